"""The adaptive experiment's arithmetic: Thompson sampling over the arms' feedback, and the
test that stops it.

Each arm's share is the probability that it is the best arm, estimated by drawing from
every arm's posterior of its metric's mean (Beta for a boolean metric, normal for a float
one) and counting how often each wins; every arm keeps ``min_share`` of the traffic until
the experiment stops. Shares, rather than a draw per request, keep assignment sticky: the
same subject keeps its arm while the shares hold still.

It stops once the best arm by mean has at least ``min_samples`` values, every other arm
too, and the 95% interval of the difference between the best and each other arm
excludes 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from offramp.ledger.confidence import Estimate, difference

DRAWS = 4000  # posterior draws per refresh: P(best) to about +-0.01


def thompson_shares(
    arms: Mapping[str, Estimate | None],
    maximise: bool,
    min_share: float,
    rng: random.Random,
    draws: int = DRAWS,
) -> dict[str, float]:
    """Each arm's share: its probability of being the best, floored at ``min_share``."""
    names = list(arms)
    if not names:
        return {}
    prior = _prior(arms)
    wins = dict.fromkeys(names, 0)
    for _ in range(draws):
        sampled = {name: _draw(arms[name], prior, rng) for name in names}
        best = max(names, key=lambda n: sampled[n] if maximise else -sampled[n])
        wins[best] += 1
    floor = min(min_share, 1.0 / len(names))
    free = 1.0 - floor * len(names)
    return {name: floor + free * wins[name] / draws for name in names}


@dataclass(frozen=True)
class Verdict:
    winner: str
    reason: str


def significant_winner(
    arms: Mapping[str, Estimate | None], maximise: bool, min_samples: int
) -> Verdict | None:
    """The arm that is better than every other with 95% confidence, once each has
    ``min_samples`` values; None until then."""
    if len(arms) < 2 or any(e is None or e.n < min_samples for e in arms.values()):
        return None
    known = {name: e for name, e in arms.items() if e is not None}
    best = max(known, key=lambda n: known[n].mean if maximise else -known[n].mean)
    notes = []
    for name, other in known.items():
        if name == best:
            continue
        diff, low, high = difference(known[best], other)
        if (low <= 0.0) if maximise else (high >= 0.0):
            return None
        notes.append(f"{best} - {name} = {diff:+.4f} (95% CI {low:+.4f} .. {high:+.4f})")
    return Verdict(best, "; ".join(notes))


def _draw(arm: Estimate | None, prior: tuple[float, float] | None, rng: random.Random) -> float:
    """One draw of ``arm``'s mean; ``prior`` (centre, spread) stands in for float arms
    with too few values (None: the metric is boolean)."""
    if arm is not None and arm.boolean:
        wins = arm.mean * arm.n
        return rng.betavariate(1 + wins, 1 + arm.n - wins)
    if prior is None:
        return rng.betavariate(1, 1)
    centre, spread = prior
    if arm is None:
        return rng.gauss(centre, 3 * spread)
    se = arm.se if arm.n > 1 and arm.se > 0 else spread / math.sqrt(arm.n)
    return rng.gauss(arm.mean, se)


def _prior(arms: Mapping[str, Estimate | None]) -> tuple[float, float] | None:
    """For a float metric, the mean and a spread of the arms' values (None: boolean)."""
    known = [e for e in arms.values() if e is not None]
    if not known or all(e.boolean for e in known):
        return None
    centre = sum(e.mean for e in known) / len(known)
    sds = [e.se * math.sqrt(e.n) for e in known if e.n > 1]
    spread = max(sum(sds) / len(sds), 1e-9) if sds else max(abs(centre), 1.0)
    return centre, spread
