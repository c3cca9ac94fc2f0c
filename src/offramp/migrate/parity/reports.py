"""The parity report, as Markdown (for a pull request) and HTML with plots (for people)."""

from __future__ import annotations

from html import escape

from offramp.migrate.parity.cases import Route
from offramp.migrate.parity.charts import histogram
from offramp.migrate.parity.compare import Summary
from offramp.migrate.parity.costs import Cost


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _usd(cost: Cost) -> str:
    if cost.usd is None:
        return cost.basis
    per = cost.per_thousand()
    return f"${cost.usd:.6f} (${per:.4f} per 1,000 prompts; {cost.basis})"


def cost_lines(costs: tuple[Cost, Cost] | None) -> list[str]:
    """The report's cost lines, one per side."""
    if costs is None:
        return []
    base, cand = costs
    lines = [f"- cost: baseline {_usd(base)}", f"- cost: candidate {_usd(cand)}"]
    if base.usd is not None:
        saved = base.usd - (cand.usd or 0.0)
        lines.append(f"- saving per 1,000 prompts: ${saved * 1000 / max(1, base.prompts):.4f}")
    return lines


def markdown(
    summary: Summary,
    baseline: Route | str,
    candidate: Route | str,
    costs: tuple[Cost, Cost] | None = None,
) -> str:
    b, c = _label(baseline), _label(candidate)
    lb, lc = summary.latency("baseline"), summary.latency("candidate")
    verdict = "PASS" if summary.passed else "FAIL"
    lines = [
        f"# Parity: {verdict}",
        "",
        f"- baseline: `{b}`",
        f"- candidate: `{c}`",
        f"- passing prompts: {summary.pass_rate:.0%} (needed "
        f"{summary.thresholds.min_pass_rate:.0%})",
        f"- latency p50 / p95: baseline {lb['p50']:.2f}s / {lb['p95']:.2f}s, candidate "
        f"{lc['p50']:.2f}s / {lc['p95']:.2f}s",
        f"- tokens: baseline {summary.tokens('baseline')}, candidate {summary.tokens('candidate')}",
        *cost_lines(costs),
        "",
        "| prompt | type | similarity | schema valid | fields match | baseline s | candidate s | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in summary.verdicts:
        lines.append(
            f"| {v.case.id} | {v.case.type} | {_fmt(v.similarity)} | {_yes(v.schema_valid)} | "
            f"{_yes(v.fields_match)} | {v.baseline.latency_s:.2f} | {v.candidate.latency_s:.2f} "
            f"| {'pass' if v.passed else 'FAIL: ' + v.reason} |"
        )
    return "\n".join(lines) + "\n"


def html(
    summary: Summary,
    baseline: Route | str,
    candidate: Route | str,
    costs: tuple[Cost, Cost] | None = None,
) -> str:
    b, c = _label(baseline), _label(candidate)
    latency = histogram(
        "Latency per prompt",
        {
            "baseline": [v.baseline.latency_s for v in summary.verdicts],
            "candidate": [v.candidate.latency_s for v in summary.verdicts],
        },
        unit="s",
        lo=0.0,
    )
    similarity = histogram(
        "Answer similarity (cosine)",
        {
            "similarity": [v.similarity for v in summary.verdicts if v.similarity is not None],
        },
        lo=0.0,
        hi=1.0,
        bins=10,
    )
    rows = "".join(
        f'<tr class="{"pass" if v.passed else "fail"}"><td>{escape(v.case.id)}</td>'
        f"<td>{v.case.type}</td><td>{_fmt(v.similarity)}</td><td>{_yes(v.schema_valid)}</td>"
        f"<td>{v.baseline.latency_s:.2f}</td><td>{v.candidate.latency_s:.2f}</td>"
        f"<td>{escape(v.reason)}</td></tr>"
        for v in summary.verdicts
    )
    verdict = "PASS" if summary.passed else "FAIL"
    lb, lc = summary.latency("baseline"), summary.latency("candidate")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parity: {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
.verdict {{ font-size: 1.6rem; font-weight: bold; color: {"#2b7a3d" if summary.passed else "#b3261e"}; }}
.charts {{ display: flex; gap: 1.5rem; flex-wrap: wrap; }}
table {{ border-collapse: collapse; margin-top: 1rem; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; font-size: 0.9rem; }}
tr.fail td {{ background: #fde8e6; }}
</style></head><body>
<p class="verdict">Parity {verdict}: {summary.pass_rate:.0%} of prompts pass</p>
<p>baseline <code>{escape(b)}</code> vs candidate <code>{escape(c)}</code></p>
<p>latency p50 / p95: baseline {lb["p50"]:.2f}s / {lb["p95"]:.2f}s, candidate
{lc["p50"]:.2f}s / {lc["p95"]:.2f}s. Tokens: baseline {summary.tokens("baseline")},
candidate {summary.tokens("candidate")}.</p>
{"".join(f"<p>{escape(line.removeprefix('- '))}</p>" for line in cost_lines(costs))}
<div class="charts">{latency}{similarity}</div>
<table><thead><tr><th>prompt</th><th>type</th><th>similarity</th><th>schema valid</th>
<th>baseline s</th><th>candidate s</th><th>result</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def _label(route: Route | str) -> str:
    return route if isinstance(route, str) else f"{route.base_url} {route.label}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
