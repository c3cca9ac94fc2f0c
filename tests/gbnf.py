"""A small GBNF recogniser, so tests can ask whether a grammar admits a text.

It reads the GBNF subset offramp writes (literals, character classes, rule references,
groups, ``|``, ``? * + {m} {m,} {m,n}``), one rule per line, and answers by memoised
matching (the grammars have no left recursion). llama.cpp remains the judge of whether a
grammar loads; this only answers "which texts does it admit".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]"}
_HEX = {"x": 2, "u": 4, "U": 8}

Node = tuple[Any, ...]


@dataclass
class Grammar:
    rules: dict[str, Node]
    _memo: dict[tuple[int, int], frozenset[int]] = field(default_factory=dict)

    def admits(self, text: str, start: str = "root") -> bool:
        self._memo = {}
        self._text = text
        return len(text) in self._ends(self.rules[start], 0)

    def _ends(self, node: Node, i: int) -> frozenset[int]:
        key = (id(node), i)
        if key not in self._memo:
            self._memo[key] = frozenset()  # no left recursion: a re-entry matches nothing
            self._memo[key] = frozenset(self._match(node, i))
        return self._memo[key]

    def _match(self, node: Node, i: int) -> set[int]:
        kind = node[0]
        text = self._text
        if kind == "lit":
            return {i + len(node[1])} if text.startswith(node[1], i) else set()
        if kind == "cls":
            if i >= len(text):
                return set()
            inside = any(a <= ord(text[i]) <= b for a, b in node[2])
            return {i + 1} if inside != node[1] else set()
        if kind == "ref":
            return set(self._ends(self.rules[node[1]], i))
        if kind == "alt":
            return {e for sub in node[1] for e in self._ends(sub, i)}
        if kind == "seq":
            ends = {i}
            for sub in node[1]:
                ends = {e for s in ends for e in self._ends(sub, s)}
            return ends
        _, sub, low, high = node
        out: set[int] = {i} if low == 0 else set()
        frontier, seen, count = {i}, {i}, 0
        while frontier and (high is None or count < high):
            frontier = {e for s in frontier for e in self._ends(sub, s)}
            count += 1
            if count >= low:
                out |= frontier
            if high is None:
                frontier -= seen
                seen |= frontier
        return out


def parse(gbnf: str) -> Grammar:
    rules: dict[str, Node] = {}
    for line in gbnf.strip().splitlines():
        if not line.strip():
            continue
        name, body = line.split("::=", 1)
        rules[name.strip()] = _Parser(body).parse()
    return Grammar(rules)


class _Parser:
    def __init__(self, body: str):
        self.s = body
        self.i = 0

    def parse(self) -> Node:
        node = self.alt()
        self.ws()
        assert self.i == len(self.s), f"unparsed: {self.s[self.i :]!r}"
        return node

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def alt(self) -> Node:
        options = [self.seq()]
        self.ws()
        while self.i < len(self.s) and self.s[self.i] == "|":
            self.i += 1
            options.append(self.seq())
            self.ws()
        return options[0] if len(options) == 1 else ("alt", options)

    def seq(self) -> Node:
        items: list[Node] = []
        while True:
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] in "|)":
                return ("seq", items)
            items.append(self.postfix(self.atom()))

    def postfix(self, node: Node) -> Node:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in "?*+":
                self.i += 1
                node = ("rep", node, 0 if c != "+" else 1, 1 if c == "?" else None)
            elif c == "{":
                end = self.s.index("}", self.i)
                low, _, high = self.s[self.i + 1 : end].partition(",")
                if "," in self.s[self.i + 1 : end]:
                    node = ("rep", node, int(low), int(high) if high else None)
                else:
                    node = ("rep", node, int(low), int(low))
                self.i = end + 1
            else:
                return node
        return node

    def atom(self) -> Node:
        c = self.s[self.i]
        if c == '"':
            self.i += 1
            out = []
            while self.s[self.i] != '"':
                out.append(self.char())
            self.i += 1
            return ("lit", "".join(out))
        if c == "[":
            self.i += 1
            negated = self.s[self.i] == "^"
            self.i += negated
            ranges = []
            while self.s[self.i] != "]":
                a = ord(self.char())
                if self.s[self.i] == "-" and self.s[self.i + 1] != "]":
                    self.i += 1
                    ranges.append((a, ord(self.char())))
                else:
                    ranges.append((a, a))
            self.i += 1
            return ("cls", negated, ranges)
        if c == "(":
            self.i += 1
            node = self.alt()
            assert self.s[self.i] == ")"
            self.i += 1
            return node
        name = re.match(r"[a-zA-Z0-9-]+", self.s[self.i :])
        assert name, f"bad GBNF at {self.s[self.i :]!r}"
        self.i += len(name.group())
        return ("ref", name.group())

    def char(self) -> str:
        c = self.s[self.i]
        if c != "\\":
            self.i += 1
            return c
        e = self.s[self.i + 1]
        if e in _HEX:
            n = _HEX[e]
            value = chr(int(self.s[self.i + 2 : self.i + 2 + n], 16))
            self.i += 2 + n
            return value
        assert e in _ESCAPES, f"unknown escape \\{e}"
        self.i += 2
        return _ESCAPES[e]
