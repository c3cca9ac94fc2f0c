"""Fair shares of the engine's time between running slots.

Every step decodes the running slots together and then samples each one, so one slow
slot (a grammar that takes a long time per token, a long prompt computed beside the
others' next tokens) slows every step and thereby every other request. The engine
therefore counts the time each generating slot costs: its sampling time (CPU time of the
engine thread, so a busy machine does not skew it), and an equal share of each decode it
takes part in. A slot takes part in a step only while its
count is no more than ``slack`` seconds ahead of the least-served running slot; one that
is ahead sits out steps until the others have had as much time. A request alone runs
every step; two requests each get at least about half the engine, whatever one of them
costs per token. Prompts computed beside generating slots are paced by ``PrefillPacer``.

A slot that starts starts level with the least-served running slot, and is kept level
while it computes its prompt (whose pace ``PrefillPacer`` sets), so a newcomer neither owes the time the others used before
it generated nor is owed it.

``slack`` is the model option ``fair_slack_ms`` (default 50 ms); a very large value turns
the fair shares off (every slot runs every step), as a benchmark does to compare.

Sitting out a step changes nothing in a sequence's results: its tokens, positions and
sampler state wait unchanged for the next step it takes part in.
"""

from __future__ import annotations

DEFAULT_SLACK_S = 0.05
_EMA = 0.2  # weight of the newest measurement in the pacer's running estimates
_FIRST_CHUNK = 16  # prompt tokens per step beside others before anything is measured


class FairShare:
    """Time counts per slot (by sequence id); called only from the engine thread."""

    def __init__(self, slack_s: float = DEFAULT_SLACK_S):
        self._slack = slack_s
        self._used: dict[int, float] = {}

    def start(self, seq_id: int) -> None:
        """A slot began a job: level with the least-served running slot."""
        self._used[seq_id] = min(self._used.values(), default=0.0)

    def level(self, seq_id: int) -> None:
        """Bring a slot still computing its prompt level with the least-served other slot,
        so it is owed nothing for the steps its prompt took when it starts generating."""
        others = [v for k, v in self._used.items() if k != seq_id]
        if seq_id in self._used and others:
            self._used[seq_id] = max(self._used[seq_id], min(others))

    def stop(self, seq_id: int) -> None:
        """A slot's job ended (finished, failed, cancelled or preempted)."""
        self._used.pop(seq_id, None)

    def may_run(self, seq_id: int) -> bool:
        """Whether the slot takes part in this step."""
        used = self._used.get(seq_id)
        if used is None:
            return True
        return used <= min(self._used.values()) + self._slack

    def charge(self, seq_id: int, seconds: float) -> None:
        """Count ``seconds`` of engine time against the slot."""
        if seq_id in self._used:
            self._used[seq_id] += seconds


class PrefillPacer:
    """How many prompt tokens a step may compute while other slots generate: about as
    many as cost one ordinary step, so the others' steps take at most about twice as long
    and they keep at least about half their speed while a long prompt is computed.

    It learns both costs from the steps themselves (wall time, running averages): an
    ordinary step (generating slots only), and each prompt token on top of it.
    """

    def __init__(self, cap: int):
        self._cap = cap
        self._base: float | None = None  # seconds of a step of generating slots only
        self._per_token: float | None = None  # seconds each prompt token adds to a step

    def chunk(self) -> int:
        """Prompt tokens this step may take beside generating slots (1 .. cap)."""
        if self._base is None or self._per_token is None:
            return min(self._cap, _FIRST_CHUNK)
        return max(1, min(self._cap, int(self._base / self._per_token)))

    def observe(self, seconds: float, prompt_tokens: int, generating: int) -> None:
        """Learn from a step that decoded ``generating`` slots' tokens beside
        ``prompt_tokens`` prompt tokens in ``seconds``."""
        if not generating:
            return
        if not prompt_tokens:
            self._base = _average(self._base, seconds)
        elif self._base is not None:
            extra = max(seconds - self._base, 1e-6) / prompt_tokens
            self._per_token = _average(self._per_token, extra)


def _average(current: float | None, value: float) -> float:
    return value if current is None else (1 - _EMA) * current + _EMA * value
