"""95% confidence intervals for an experiment's per-arm means and their differences.

A boolean metric (every value 0 or 1) gets Wilson's score interval, which stays inside
[0, 1] and behaves with few samples or rates near 0 or 1; a float metric gets Student's t
interval of the mean. A difference of two arms' means gets the normal (Welch) interval,
used only once both arms have enough samples for it to hold (for booleans with
Agresti and Caffo's added success and failure per arm, so 10/10 against 0/10 is not
judged certain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the normal 97.5% quantile
# Student's t 97.5% quantiles for 1..30 degrees of freedom; beyond 30, Z95 is close enough.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its 95% interval; ``se`` is its standard error."""

    n: int
    mean: float
    low: float
    high: float
    se: float
    boolean: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "n": self.n,
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "boolean": self.boolean,
        }


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else Z95


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval of a proportion (0, 1 with no data)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(values: Sequence[float], boolean: bool | None = None) -> Estimate | None:
    """The mean of ``values`` with its 95% interval; None when there are none.
    ``boolean`` None: boolean when every value is 0 or 1."""
    n = len(values)
    if n == 0:
        return None
    is_bool = all(v in (0.0, 1.0) for v in values) if boolean is None else boolean
    mean = sum(values) / n
    if is_bool:
        low, high = wilson(sum(values), n)
        shrunk = (sum(values) + 1) / (n + 2)  # Agresti-Caffo: never a zero standard error
        return Estimate(n, mean, low, high, math.sqrt(shrunk * (1 - shrunk) / (n + 2)), True)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    half = t975(n - 1) * se if n > 1 else math.inf
    return Estimate(n, mean, mean - half, mean + half, se, False)


def difference(a: Estimate, b: Estimate) -> tuple[float, float, float]:
    """``a.mean - b.mean`` and its 95% interval (normal approximation)."""
    diff = a.mean - b.mean
    half = Z95 * math.sqrt(a.se * a.se + b.se * b.se)
    return diff, diff - half, diff + half
