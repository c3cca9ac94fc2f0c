"""Parity reports priced from the price table: each side's reported tokens at the list
price of the model it ran, and nothing invented for a route the table cannot price."""

from __future__ import annotations

from pathlib import Path

import pytest

from offramp.errors import InvalidRequest
from offramp.migrate.parity import reports
from offramp.migrate.parity.cases import Case, parse_route
from offramp.migrate.parity.compare import Summary, Thresholds, Verdict
from offramp.migrate.parity.costs import side_cost
from offramp.migrate.parity.runner import Answer, load_answers, save_answers
from offramp.routing.pricing import load_price_table


def _answer(i: int, *, model: str = "gpt-4o-mini", priced_as: str = "openai") -> Answer:
    return Answer(
        f"c{i}",
        text="ok",
        tokens=1500,
        prompt_tokens=1000,
        completion_tokens=500,
        model=model,
        priced_as=priced_as,
    )


def test_routes_on_vendor_hosts_are_priced_as_the_vendor() -> None:
    assert parse_route("https://api.openai.com/v1#gpt-4o").provider == "openai"
    assert parse_route("https://api.anthropic.com/v1#claude-sonnet-4-5").provider == "anthropic"
    assert parse_route("http://127.0.0.1:8000/v1#gpt-4o-mini").provider is None
    assert parse_route("http://gw.internal/v1#gpt-4o?priced_as=openai").provider == "openai"
    with pytest.raises(InvalidRequest, match="priced_as"):
        parse_route("http://gw.internal/v1#gpt-4o?priced_as=azure")


def test_side_cost_uses_the_list_price() -> None:
    table = load_price_table()
    cost = side_cost([_answer(i) for i in range(4)], table)
    # gpt-4o-mini: $0.15 / M input, $0.60 / M output; 4 x (1000 in + 500 out)
    assert cost.usd == pytest.approx(4 * (1000 * 0.15 + 500 * 0.60) / 1_000_000)
    assert cost.usd is not None and cost.per_thousand() == pytest.approx(cost.usd * 250)
    assert "openai gpt-4o-mini" in cost.basis and table.version in cost.basis
    dated = side_cost([_answer(0, model="gpt-4o-mini-2024-07-18")], table)
    assert dated.usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1_000_000)
    local = side_cost([_answer(0, priced_as="")], table)
    assert local.usd is None and "not priced" in local.basis
    unknown = side_cost([_answer(0, model="my-finetune")], table)
    assert unknown.usd is None


def test_recorded_answers_keep_what_prices_them(tmp_path: Path) -> None:
    path = tmp_path / "baseline.jsonl"
    save_answers(path, [_answer(0)])
    [replayed] = load_answers(path, [Case("c0", "chat", messages=({"role": "user"},))])
    assert (replayed.model, replayed.priced_as, replayed.prompt_tokens) == (
        "gpt-4o-mini",
        "openai",
        1000,
    )


def test_reports_show_both_costs_and_the_saving() -> None:
    table = load_price_table()
    base = [_answer(i) for i in range(2)]
    cand = [_answer(i, priced_as="") for i in range(2)]
    case = Case("c0", "chat", messages=({"role": "user", "content": "hi"},))
    verdicts = [
        Verdict(case, b, c, 0.9, None, None, True, "ok") for b, c in zip(base, cand, strict=True)
    ]
    summary = Summary(verdicts, Thresholds())
    costs = (side_cost(base, table), side_cost(cand, table))
    markdown = reports.markdown(summary, "https://api.openai.com/v1 gpt-4o-mini", "local", costs)
    assert (
        "- cost: baseline $0.000900 ($0.4500 per 1,000 prompts; list prices of openai gpt-4o-mini"
        in markdown
    )
    assert "- cost: candidate not priced" in markdown
    assert "- saving per 1,000 prompts: $0.4500" in markdown
    assert "saving per 1,000 prompts: $0.4500" in reports.html(summary, "b", "c", costs)
