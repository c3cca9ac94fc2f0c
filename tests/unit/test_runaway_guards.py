"""The repetition guard, fair shares of engine time, and fitting a conversation into the
context: the pure parts, without a model."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from offramp.errors import InvalidRequest
from offramp.providers.llamacpp import context_fit
from offramp.providers.llamacpp.fairness import FairShare, PrefillPacer
from offramp.providers.llamacpp.provider import _output_cap
from offramp.providers.llamacpp.repetition import RepetitionGuard
from offramp.types import Message


def _stops_after(tokens: list[int]) -> int | None:
    guard = RepetitionGuard()
    for i, token in enumerate(tokens):
        if guard.feed(token):
            return i + 1
    return None


@pytest.mark.parametrize(("span", "stops_at"), [(1, 96), (10, 96), (60, 240), (128, 512)])
def test_a_span_repeated_over_and_over_is_stopped(span: int, stops_at: int) -> None:
    rng = random.Random(span)
    intro = [rng.randrange(1000, 2000) for _ in range(50)]
    unit = [rng.randrange(2000, 3000) for _ in range(span)]
    tokens = intro + unit * (1000 // span + 2)
    assert _stops_after(tokens) == len(intro) + stops_at


def test_text_that_only_resembles_itself_runs_on() -> None:
    rng = random.Random(1)
    assert _stops_after([rng.randrange(50_000) for _ in range(3000)]) is None
    # a numbered list: every line alike but for its number
    listing = [t for n in range(300) for t in (n, 11, 12, 13, 14, 15)]
    assert _stops_after(listing) is None
    # three copies of a long paragraph are not yet a loop
    paragraph = [rng.randrange(50_000) for _ in range(150)]
    assert _stops_after(paragraph * 3) is None


def test_fair_share_lets_the_least_served_slot_run() -> None:
    fair = FairShare(slack_s=0.01)
    fair.start(0)
    fair.start(1)
    assert fair.may_run(0) and fair.may_run(1)
    fair.charge(0, 0.2)  # a slow grammar step
    assert not fair.may_run(0) and fair.may_run(1)
    for _ in range(7):
        fair.charge(1, 0.025)
    assert not fair.may_run(0)  # 0.175 s < 0.2 s: still behind
    fair.charge(1, 0.025)
    assert fair.may_run(0)
    fair.start(2)  # a newcomer starts level with the least served, owing nothing
    assert fair.may_run(2) and fair.may_run(1)
    fair.charge(1, 0.5)
    fair.level(2)  # computing its prompt: kept level with the least-served other slot
    assert fair.may_run(2) and fair.may_run(0)
    fair.stop(0)
    fair.stop(1)
    assert fair.may_run(2) and fair.may_run(7)  # an unknown slot is never held back


def test_output_cap_is_the_lower_of_model_option_and_setting() -> None:
    assert _output_cap({}, None) is None
    assert _output_cap({"max_output_tokens": 1024}, None) == 1024
    assert _output_cap({"max_output_tokens": 1024}, 200) == 200
    assert _output_cap({}, 300) == 300
    with pytest.raises(InvalidRequest, match="max_output_tokens"):
        _output_cap({"max_output_tokens": 0}, None)


def _chat(turns: int) -> tuple[Message, ...]:
    messages = [Message("system", "S")]
    for i in range(turns):
        messages += [Message("user", f"u{i}"), Message("assistant", f"a{i}")]
    return (*messages, Message("user", "last"))


def _under(limit: int) -> Callable[[tuple[Message, ...]], bool]:
    return lambda messages: sum(len(m.content or "") + 10 for m in messages) <= limit


def test_drop_oldest_drops_whole_turns_and_keeps_system_and_last_turn() -> None:
    messages = _chat(5)  # system + 5 turns + last user: 12 messages, 10-13 units each
    fitted = context_fit.fit(messages, "drop_oldest", _under(80))
    assert fitted is not None
    assert [m.content for m in fitted.messages] == ["S", "u3", "a3", "u4", "a4", "last"]
    assert fitted.dropped == 6
    assert fitted.notice("drop_oldest") == "drop_oldest; messages_dropped=6"
    assert context_fit.fit(messages, "drop_oldest", _under(20)) is None  # cannot fit


def test_a_tool_result_goes_with_its_call() -> None:
    messages = (
        Message("user", "weather?"),
        Message("assistant", None),
        Message("tool", "sunny", tool_call_id="c1"),
        Message("assistant", "It is sunny."),
        Message("user", "and tomorrow?"),
    )
    fitted = context_fit.fit(messages, "drop_oldest", _under(40))
    assert fitted is not None and [m.role for m in fitted.messages] == ["user"]


def test_truncate_middle_keeps_the_first_turn_then_cuts_the_last_message() -> None:
    messages = _chat(5)
    fitted = context_fit.fit(messages, "truncate_middle", _under(80))
    assert fitted is not None
    assert [m.content for m in fitted.messages] == ["S", "u0", "a0", "u4", "a4", "last"]
    long = (Message("system", "S"), Message("user", "head " + "x" * 500 + " tail"))
    fitted = context_fit.fit(long, "truncate_middle", _under(120))
    assert fitted is not None
    text = fitted.messages[-1].content or ""
    assert text.startswith("head ") and text.endswith(" tail") and context_fit.MARK in text
    assert len(text) + 21 <= 120 and fitted.cut_chars > 400


def test_overflow_option_is_checked() -> None:
    assert context_fit.overflow_option("drop_oldest") == "drop_oldest"
    with pytest.raises(InvalidRequest, match="context_overflow"):
        context_fit.overflow_option("rolling")


def test_the_context_error_says_by_how_much_in_both_tokenizers() -> None:
    error = context_fit.too_long(8192, 9000, 100, "messages", 7000)
    assert "9100 tokens (9000 in the messages, 100 in the completion): 908 too many" in str(error)
    assert "about 7000 tokens" in str(error)
    assert context_fit.openai_estimate(400, 2) == 100 + 9


def test_prefill_pacer_sizes_prompt_chunks_to_about_one_ordinary_step() -> None:
    pacer = PrefillPacer(cap=128)
    assert pacer.chunk() == 16  # nothing measured yet
    pacer.observe(0.5, 512, 0)  # a prompt alone teaches nothing about the others' steps
    assert pacer.chunk() == 16
    for _ in range(20):
        pacer.observe(0.020, 0, 2)  # an ordinary step: 20 ms
        pacer.observe(0.020 + 16 * 0.004, 16, 2)  # each prompt token adds 4 ms
    assert pacer.chunk() == 5  # 20 ms / 4 ms
    fast = PrefillPacer(cap=128)
    fast.observe(0.010, 0, 1)
    fast.observe(0.011, 16, 1)  # prompt tokens nearly free (a GPU): up to the cap
    assert fast.chunk() == 128
