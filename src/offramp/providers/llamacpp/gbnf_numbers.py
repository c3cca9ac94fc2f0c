"""GBNF for JSON numbers within bounds (``minimum``/``maximum`` and their exclusive forms).

Integers are enforced exactly: a bounded range of decimal strings is split by length and
then digit by digit (``[3-9] | [1-9] [0-9] | "1" [0-4] [0-9]`` for 3..149). Numbers with
a fraction are enforced exactly when the bounds are whole numbers (``Field(ge=0, le=1)``
admits ``0``, ``0.25`` and ``1.0`` but not ``1.5``); other bounds are widened to the whole
numbers around them and the rest is left to validation. Bounded numbers are written
without an exponent. Integer parts have at most ``DIGITS`` digits, as in llama.cpp's own
JSON grammar.
"""

from __future__ import annotations

import math

DIGITS = 15
FRACTION = '("." [0-9]{1,15})?'
ZERO_FRACTION = '("." "0"{1,15})?'
NONZERO_FRACTION = '"." [0-9]{0,14} [1-9]'
INTEGER = '"-"? ("0" | [1-9] [0-9]{0,14})'
NUMBER = INTEGER + ' ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,4})?'


class EmptyRange(ValueError):
    """No number satisfies the bounds."""


def integer_rule(low: float | None, high: float | None) -> str:
    """Integers n with low <= n <= high (None: unbounded); EmptyRange if there are none."""
    lo = None if low is None else math.ceil(low)
    hi = None if high is None else math.floor(high)
    if lo is None and hi is None:
        return INTEGER
    parts: list[str] = []
    if hi is None or hi >= 0:
        start = 0 if lo is None else max(lo, 0)
        if hi is None or start <= hi:
            parts.append(uint_range(start, hi))
    if lo is None or lo < 0:
        top = -1 if hi is None else min(hi, -1)
        if lo is None or lo <= top:
            parts.append('"-" ' + _group(uint_range(-top, None if lo is None else -lo)))
    if not parts:
        raise EmptyRange(f"no integer lies between {low} and {high}")
    return _alternatives(parts)


def number_rule(
    low: float | None, low_exclusive: bool, high: float | None, high_exclusive: bool
) -> tuple[str, bool]:
    """Numbers between the bounds, and whether the rule is exact (False: it admits more,
    because a bound is not a whole number). EmptyRange if nothing lies between them."""
    if low is None and high is None:
        return NUMBER, True
    exact = True
    lo = hi = None
    if low is not None:
        lo = math.floor(low)
        if lo != low:
            exact, low_exclusive = False, False
    if high is not None:
        hi = math.ceil(high)
        if hi != high:
            exact, high_exclusive = False, False
    parts: list[str] = []
    if hi is None or hi > 0 or (hi == 0 and not high_exclusive):
        start = 0 if lo is None else max(lo, 0)
        start_exclusive = lo is not None and lo >= 0 and low_exclusive
        parts += _magnitudes(start, start_exclusive, hi, high_exclusive)
    if lo is None or lo < 0:
        negative_high = hi is not None and hi < 0
        smallest = -hi if hi is not None and negative_high else 0
        smallest_exclusive = high_exclusive if negative_high else True
        largest = None if lo is None else -lo
        parts += [
            '"-" ' + _group(m)
            for m in _magnitudes(smallest, smallest_exclusive, largest, low_exclusive)
        ]
    if not parts:
        raise EmptyRange(f"no number lies between {low} and {high}")
    return _alternatives(parts), exact


def _magnitudes(a: int, a_exclusive: bool, b: int | None, b_exclusive: bool) -> list[str]:
    """Alternatives for unsigned decimals m with a <(=) m <(=) b, by integer part."""
    if b is not None and b < a:
        return []
    if b is not None and a == b:
        return [] if a_exclusive or b_exclusive else [f'"{a}" {ZERO_FRACTION}']
    parts = [f'"{a}" {NONZERO_FRACTION if a_exclusive else FRACTION}']
    inner_high = None if b is None else b - 1
    if inner_high is None or a + 1 <= inner_high:
        parts.append(f"{_group(uint_range(a + 1, inner_high))} {FRACTION}")
    if b is not None and not b_exclusive:
        parts.append(f'"{b}" {ZERO_FRACTION}')
    return parts


def uint_range(lo: int, hi: int | None) -> str:
    """Decimal integers without sign or leading zeros in lo..hi (hi None: unbounded)."""
    lo_len = len(str(lo))
    parts: list[str] = []
    if hi is None:
        parts.append(_same_length(str(lo), "9" * lo_len))
        if lo_len < DIGITS:
            parts.append(f"[1-9] [0-9]{{{lo_len},{DIGITS - 1}}}")
        return _alternatives(parts)
    hi_len = len(str(hi))
    for n in range(lo_len, hi_len + 1):
        a = str(lo) if n == lo_len else "1" + "0" * (n - 1)
        b = str(hi) if n == hi_len else "9" * n
        parts.append(_same_length(a, b))
    return _alternatives(parts)


def _same_length(lo: str, hi: str) -> str:
    """Digit strings of one length between lo and hi (which compare as numbers do)."""
    if lo == hi:
        return f'"{lo}"'
    if len(lo) == 1:
        return f"[{lo}-{hi}]"
    if lo[0] == hi[0]:
        return f'"{lo[0]}" {_group(_same_length(lo[1:], hi[1:]))}'
    rest = len(lo) - 1
    parts: list[str] = []
    first, last = int(lo[0]), int(hi[0])
    if lo[1:] != "0" * rest:
        parts.append(f'"{lo[0]}" {_group(_same_length(lo[1:], "9" * rest))}')
        first += 1
    tail = None
    if hi[1:] != "9" * rest:
        tail = f'"{hi[0]}" {_group(_same_length("0" * rest, hi[1:]))}'
        last -= 1
    if first <= last:
        digit = f"[{first}]" if first == last else f"[{first}-{last}]"
        parts.append(f"{digit} [0-9]{{{rest}}}")
    if tail:
        parts.append(tail)
    return _alternatives(parts)


def _alternatives(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"


def _group(expr: str) -> str:
    """``expr`` safe to follow or be followed by more items in a sequence."""
    if " " not in expr or _one_group(expr):
        return expr
    return f"({expr})"


def _one_group(expr: str) -> bool:
    """Whether ``expr`` is one parenthesised group (these rules put no parens in literals)."""
    depth = 0
    for i, ch in enumerate(expr):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return i == len(expr) - 1 and ch == ")"
    return False
