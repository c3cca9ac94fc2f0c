"""Stop-string handling for streamed text: never emit text that might become a stop string."""

from __future__ import annotations

from dataclasses import dataclass

from offramp.types import TokenLogprob


@dataclass(frozen=True)
class Piece:
    """Text of one generated token (possibly cut at a stop string) and its log-probability."""

    text: str
    logprob: TokenLogprob | None = None


class StopScanner:
    """Holds back token text that could be the start of a stop string.

    ``feed`` returns the pieces that are safe to emit and whether a stop string was hit;
    on a hit the text before the stop string is emitted and the rest is dropped. Pieces
    are never split except at the stop string itself, so log-probabilities stay aligned.
    """

    def __init__(self, stops: tuple[str, ...]):
        self._stops = tuple(s for s in stops if s)
        self._held: list[Piece] = []

    def feed(self, piece: Piece) -> tuple[list[Piece], bool]:
        if not self._stops:
            return [piece], False
        self._held.append(piece)
        joined = "".join(p.text for p in self._held)
        hit = min((i for s in self._stops if (i := joined.find(s)) >= 0), default=-1)
        if hit >= 0:
            out = _take_prefix(self._held, hit, split=True)
            self._held = []
            return out, True
        safe = len(joined) - self._partial_suffix(joined)
        out = _take_prefix(self._held, safe, split=False)
        self._held = self._held[len(out) :]
        return out, False

    def flush(self) -> list[Piece]:
        """Everything still held, for when generation ends without a stop string."""
        out, self._held = self._held, []
        return out

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a stop."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best


def _take_prefix(pieces: list[Piece], limit: int, *, split: bool) -> list[Piece]:
    """The pieces covering the first ``limit`` characters; the boundary piece is cut
    when ``split`` and held back otherwise."""
    out: list[Piece] = []
    used = 0
    for piece in pieces:
        end = used + len(piece.text)
        if end <= limit:
            out.append(piece)
            used = end
            continue
        if split and limit > used:
            out.append(Piece(piece.text[: limit - used], piece.logprob))
        break
    return out
