"""Fair shares of the engine's time between running slots.

Every step decodes the running slots together and then samples each one, so one slow
slot (a grammar that takes a long time per token, a long prompt computed beside the
others' next tokens) slows every step and thereby every other request. The engine
therefore counts the time each slot costs: its sampling time (CPU time of the engine
thread, so a busy machine does not skew it), and its share of each decode by tokens (one
per generating slot; a prompt's tokens beyond its first ``prefill_chunk`` ones, so a short
prompt joins at the cost of one slower step). A slot takes part in a step only while its
count is no more than ``slack`` seconds ahead of the least-served running slot; one that
is ahead sits out steps until the others have had as much time. A request alone runs
every step; two requests each get at least about half the engine, whatever one of them
costs per token.

A slot that starts starts level with the least-served running slot, and is kept level
while it computes its prompt, so a newcomer neither owes the time the others used before
it generated nor is owed it.

``slack`` is the model option ``fair_slack_ms`` (default 50 ms); a very large value turns
the fair shares off (every slot runs every step), as a benchmark does to compare.

Sitting out a step changes nothing in a sequence's results: its tokens, positions and
sampler state wait unchanged for the next step it takes part in.
"""

from __future__ import annotations

DEFAULT_SLACK_S = 0.05


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
