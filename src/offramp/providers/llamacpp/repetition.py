"""The degeneration guard: ends an answer that repeats the same span over and over.

Small models fall into loops ("The answer is: The answer is: ...", or a paragraph written
again and again) and would go on until their token cap. The guard watches the generated
tokens: when the last ``L`` tokens are copies of one span of ``p`` tokens (period ``p``,
1 <= p <= ``MAX_PERIOD``) with ``L >= max(MIN_REPEATED, REPEATS * p)``, the answer is
ended with ``finish_reason: "length"`` and reported (``x-offramp-degenerate: stopped``).
So a single token must repeat 96 times, a 10-token phrase ~10 times, and a 60-token
sentence 4 times in a row; text that only resembles itself (lists, tables, code with
similar lines) is not periodic token for token and is left alone.

Per token this is one comparison per period (``MAX_PERIOD``), kept as run lengths: for each
period ``p``, how many of the latest tokens equal the token ``p`` before them.
"""

from __future__ import annotations

MAX_PERIOD = 128  # longest span (tokens) whose repetition is detected
REPEATS = 4  # copies of a span that end the answer...
MIN_REPEATED = 96  # ...once the repeated tail is at least this many tokens


class RepetitionGuard:
    """Fed one generated token at a time; says when the answer has degenerated."""

    def __init__(
        self,
        max_period: int = MAX_PERIOD,
        repeats: int = REPEATS,
        min_repeated: int = MIN_REPEATED,
    ):
        self._max_period = max_period
        self._repeats = repeats
        self._min_repeated = min_repeated
        self._tokens: list[int] = []
        self._runs = [0] * (max_period + 1)  # runs[p]: latest tokens equal to the one p before

    def feed(self, token: int) -> bool:
        """Add ``token``; True when the tail is one span repeated past the limits."""
        tokens = self._tokens
        tokens.append(token)
        n = len(tokens)
        runs = self._runs
        degenerate = False
        for p in range(1, min(self._max_period, n - 1) + 1):
            if tokens[n - 1 - p] == token:
                runs[p] += 1
                repeated = runs[p] + p  # the tail made of copies of one p-token span
                if repeated >= self._min_repeated and repeated >= self._repeats * p:
                    degenerate = True
            else:
                runs[p] = 0
        if n > 4 * self._max_period:  # keep the list short; runs carry the history
            del tokens[: n - self._max_period - 1]
        return degenerate
