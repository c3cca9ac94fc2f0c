"""GBNF for the text inside JSON strings: literals, formats, regular expressions.

Everything here describes a string's *encoded* contents, as they appear between the
quotes: a ``"`` in the value is written ``\\"``, a newline ``\\n``, so no raw control
character ever reaches the output (JSON forbids them).

``pattern`` is translated from Python's own parse of the regular expression (the one
jsonschema validates with), so the grammar and the validator read it alike. Constructs
a grammar cannot express (look-arounds, back-references, case-insensitive flags,
anchors in the middle) make ``pattern_rule`` return None: the string is then only
checked by validation.
"""

from __future__ import annotations

import json
import re
from re import _constants as sre  # type: ignore[attr-defined, unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined, unused-ignore]
from typing import Any

# rule name -> (body, rules it uses)
BUILTINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "space": ('" "?', ()),
    "char": (
        r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
        (),
    ),
    "char-line": (r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bft] | "u" [0-9a-fA-F]{4})', ()),
    "hex": ("[0-9a-fA-F]", ()),
    "fmt-date": (
        '[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])',
        (),
    ),
    "fmt-time": (
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
        '("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
        (),
    ),
    "fmt-date-time": ('fmt-date "T" fmt-time', ("fmt-date", "fmt-time")),
    "fmt-uuid": ('hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12}', ("hex",)),
    "dns-label": ("[A-Za-z0-9] ([A-Za-z0-9-]{0,61} [A-Za-z0-9])?", ()),
    "fmt-hostname": ('dns-label ("." dns-label)*', ("dns-label",)),
    "fmt-email": (
        "[A-Za-z0-9!#$%&'*+=?^_`{|}~-] [A-Za-z0-9.!#$%&'*+=?^_`{|}~-]{0,63} \"@\" "
        'dns-label ("." dns-label)+',
        ("dns-label",),
    ),
    "fmt-duration": (
        '"P" ([0-9]{1,4} "D" ("T" duration-time)? | "T" duration-time)',
        ("duration-time",),
    ),
    "duration-time": (
        '[0-9]{1,4} "H" ([0-9]{1,4} "M")? ([0-9]{1,4} "S")? | [0-9]{1,4} "M" ([0-9]{1,4} "S")? '
        '| [0-9]{1,4} ("." [0-9]{1,6})? "S"',
        (),
    ),
    "fmt-ipv4": ('octet "." octet "." octet "." octet', ("octet",)),
    "octet": ('"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9]? [0-9]', ()),
    # RFC 3986 characters, less the ones JSON would have to escape
    "fmt-uri": (
        '[a-zA-Z] [a-zA-Z0-9+.-]* ":" [A-Za-z0-9._~:/?#\\[\\]@!$&\'()*+,;=%-]+',
        (),
    ),
}
FORMATS = {
    "date": "fmt-date",
    "time": "fmt-time",
    "date-time": "fmt-date-time",
    "uuid": "fmt-uuid",
    "email": "fmt-email",
    "idn-email": "fmt-email",
    "hostname": "fmt-hostname",
    "ipv4": "fmt-ipv4",
    "duration": "fmt-duration",
    "uri": "fmt-uri",
    "iri": "fmt-uri",
}

_RAW_FORBIDDEN = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F)]
_MAX_CODE = 0x10FFFF
_ECMA_CLASSES = {  # JSON Schema patterns are ECMA-262 regexes: ASCII \d \w, these \s
    sre.CATEGORY_DIGIT: [(0x30, 0x39)],
    sre.CATEGORY_WORD: [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    sre.CATEGORY_SPACE: [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0xFEFF, 0xFEFF)],
}
_NEGATED_CLASSES = {
    sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
    sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
    sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
}

Ranges = list[tuple[int, int]]


def literal(text: str) -> str:
    """A GBNF string literal matching exactly ``text``."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_literal(value: Any) -> str:
    """A GBNF literal matching ``value`` written as JSON."""
    return literal(json.dumps(value, ensure_ascii=False))


def string_contents(value: str) -> str:
    """A GBNF literal matching the encoded contents of the JSON string ``value``."""
    return literal(json.dumps(value, ensure_ascii=False)[1:-1])


class _Untranslatable(Exception):
    """A regex construct with no grammar equivalent."""


def pattern_rule(pattern: str) -> tuple[str, set[str]] | None:
    """GBNF for the contents of strings ``re.search(pattern, s)`` accepts, and the
    builtin rules it uses; None when the pattern cannot be expressed."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE):
        return None
    items = list(parsed)
    used: set[str] = set()
    starts = ((sre.AT, sre.AT_BEGINNING), (sre.AT, sre.AT_BEGINNING_STRING))
    anchored_start = bool(items) and items[0] in starts
    if anchored_start:
        items = items[1:]
    anchored_end = (
        bool(items)
        and items[-1][0] == sre.AT
        and items[-1][1]
        in (
            sre.AT_END,
            sre.AT_END_STRING,
        )
    )
    if anchored_end:
        items = items[:-1]
    try:
        body = _sequence(items, used)
    except _Untranslatable:
        return None
    parts = [] if anchored_start else ["char*"]
    parts += [body] if body else []
    parts += [] if anchored_end else ["char*"]
    if not anchored_start or not anchored_end:
        used.add("char")
    return " ".join(parts) or '""', used


def _sequence(items: list[tuple[Any, Any]], used: set[str]) -> str:
    return " ".join(_node(op, arg, used) for op, arg in items)


def _node(op: Any, arg: Any, used: set[str]) -> str:
    if op == sre.LITERAL:
        return string_contents(chr(arg))
    if op == sre.NOT_LITERAL:
        return _char_set(_complement([(arg, arg)]))
    if op == sre.ANY:
        used.add("char-line")
        return "char-line"
    if op == sre.IN:
        return _char_set(_in_ranges(arg))
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
        low, high, sub = arg
        inner = _sequence(list(sub), used)
        return _repeat(f"({inner})" if " " in inner else inner, low, high)
    if op == sre.SUBPATTERN:
        return f"({_sequence(list(arg[-1]), used)})"
    if op == sre.BRANCH:
        alternatives = [_sequence(list(b), used) or '""' for b in arg[1]]
        return "(" + " | ".join(alternatives) + ")"
    raise _Untranslatable(str(op))


def _repeat(item: str, low: int, high: int) -> str:
    unbounded = high == sre.MAXREPEAT
    if (low, unbounded) == (0, True):
        return item + "*"
    if (low, unbounded) == (1, True):
        return item + "+"
    if (low, high) == (0, 1):
        return item + "?"
    if unbounded:
        return f"{item}{{{low},}}"
    return f"{item}{{{low}}}" if low == high else f"{item}{{{low},{high}}}"


def _in_ranges(items: list[tuple[Any, Any]]) -> Ranges:
    ranges: Ranges = []
    negate = False
    for op, arg in items:
        if op == sre.NEGATE:
            negate = True
        elif op == sre.LITERAL:
            ranges.append((arg, arg))
        elif op == sre.RANGE:
            ranges.append(arg)
        elif op == sre.CATEGORY and arg in _ECMA_CLASSES:
            ranges += _ECMA_CLASSES[arg]
        elif op == sre.CATEGORY and arg in _NEGATED_CLASSES:
            ranges += _complement(_ECMA_CLASSES[_NEGATED_CLASSES[arg]])
        else:
            raise _Untranslatable(str(op))
    return _complement(ranges) if negate else _normalise(ranges)


def _char_set(ranges: Ranges) -> str:
    """One character of ``ranges``, as JSON encodes it inside a string."""
    raw = _subtract(ranges, _RAW_FORBIDDEN)
    options = [_class(raw)] if raw else []
    for ch in ('"', "\\", "\n", "\t", "\r", "\b", "\f"):
        if _contains(ranges, ord(ch)):
            options.append(string_contents(ch))
    if not options:
        raise _Untranslatable("an empty character class")
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _class(ranges: Ranges) -> str:
    def char(c: int) -> str:
        if c < 0x20 or c == 0x7F or chr(c) in "\\]^-[":  # GBNF escapes only some of these
            return f"\\x{c:02X}"
        if c > 0xFFFF:
            return f"\\U{c:08X}"
        if c > 0x7E:
            return f"\\u{c:04X}"
        return chr(c)

    body = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)
    return f"[{body}]"


def _normalise(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    start = 0
    for a, b in _normalise(ranges):
        if a > start:
            out.append((start, a - 1))
        start = b + 1
    if start <= _MAX_CODE:
        out.append((start, _MAX_CODE))
    return out


def _subtract(ranges: Ranges, removed: Ranges) -> Ranges:
    keep = _complement(removed)
    out: Ranges = []
    for a, b in _normalise(ranges):
        for c, d in keep:
            lo, hi = max(a, c), min(b, d)
            if lo <= hi:
                out.append((lo, hi))
    return out


def _contains(ranges: Ranges, code: int) -> bool:
    return any(a <= code <= b for a, b in ranges)
