"""Which tool calls break their function's schema."""

from __future__ import annotations

from offramp.gateway.tool_repair import call_problems
from offramp.types import Choice, ToolCall, ToolSpec

ORDER = ToolSpec(
    "order",
    "",
    {
        "type": "object",
        "properties": {"n": {"type": "integer", "multipleOf": 5}},
        "required": ["n"],
    },
)


def _choice(arguments: str, finish: str = "tool_calls", name: str = "order") -> Choice:
    return Choice(0, None, finish, (ToolCall("call_1", name, arguments),))  # type: ignore[arg-type]


def test_valid_calls_have_no_problems() -> None:
    assert call_problems((ORDER,), _choice('{"n": 10}')) == []


def test_each_broken_call_is_named_with_its_problem() -> None:
    assert "multiple of 5" in call_problems((ORDER,), _choice('{"n": 7}'))[0]
    assert "not JSON" in call_problems((ORDER,), _choice('{"n": '))[0]
    assert "not one of the functions" in call_problems((ORDER,), _choice("{}", name="other"))[0]


def test_calls_cut_off_by_the_token_limit_are_left_alone() -> None:
    assert call_problems((ORDER,), _choice('{"n": ', finish="length")) == []
