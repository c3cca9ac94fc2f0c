"""Edits of libcst argument lists and expressions that keep the code's layout and comments."""

from __future__ import annotations

import libcst as cst

TIGHT = (cst.Attribute, cst.Subscript, cst.BinaryOperation, cst.UnaryOperation, cst.Await)


def string_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr.value}" if inner else ""
    return ""


def slashed(value: cst.BaseExpression) -> cst.BaseExpression:
    """``VALUE.rstrip("/") + "/"``."""
    if not isinstance(value, cst.Call | cst.Name | cst.Attribute | cst.Subscript):
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    strip = cst.Call(
        func=cst.Attribute(value=value, attr=cst.Name("rstrip")),
        args=[cst.Arg(cst.SimpleString('"/"'))],
    )
    return cst.BinaryOperation(left=strip, operator=cst.Add(), right=cst.SimpleString('"/"'))


def kwarg(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(
        value,
        keyword=cst.Name(name),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )


def inserted(
    args: list[cst.Arg], dropped: set[int], at: int, added: list[cst.Arg]
) -> tuple[list[cst.Arg], set[int]]:
    """``added`` inserted at ``at``, with the indexes of dropped arguments moved along."""
    shifted = {i + len(added) if i >= at else i for i in dropped}
    return [*args[:at], *added, *args[at:]], shifted


def without(args: list[cst.Arg], dropped: set[int]) -> list[cst.Arg]:
    """``args`` without the dropped ones. A dropped argument's comment, and the layout of a
    dropped last argument, pass to the argument before it, so no comment is lost."""
    out: list[cst.Arg] = []
    for i, arg in enumerate(args):
        if i not in dropped:
            out.append(arg)
            continue
        last = all(j in dropped for j in range(i + 1, len(args)))
        if out and not _comment(out[-1].comma) and (last or _comment(arg.comma)):
            out[-1] = out[-1].with_changes(comma=arg.comma)
        elif out and last:  # keep its comment, end where the dropped one ended
            out[-1] = out[-1].with_changes(comma=_closing(out[-1].comma, arg.comma))
    return out


def _closing(
    mine: cst.Comma | cst.MaybeSentinel, theirs: cst.Comma | cst.MaybeSentinel
) -> cst.Comma | cst.MaybeSentinel:
    """``mine`` (with its comment) ending on the line ``theirs`` ended on."""
    if not isinstance(mine, cst.Comma) or not isinstance(theirs, cst.Comma):
        return mine
    ours, last = mine.whitespace_after, theirs.whitespace_after
    if isinstance(ours, cst.ParenthesizedWhitespace) and isinstance(
        last, cst.ParenthesizedWhitespace
    ):
        ours = ours.with_changes(indent=last.indent, last_line=last.last_line)
        return mine.with_changes(whitespace_after=ours)
    return mine


def _comment(comma: cst.Comma | cst.MaybeSentinel) -> bool:
    if not isinstance(comma, cst.Comma):
        return False
    after = comma.whitespace_after
    return isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None


def with_commas(args: list[cst.Arg]) -> list[cst.Arg]:
    """Arguments with a comma between each, the last one's trailing comma kept as was."""
    out = []
    for i, arg in enumerate(args):
        if i < len(args) - 1 and arg.comma is cst.MaybeSentinel.DEFAULT:
            arg = arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        out.append(arg)
    return out
