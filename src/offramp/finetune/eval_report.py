"""The evaluation report, as Markdown (for a pull request or CI log) and HTML."""

from __future__ import annotations

from html import escape

from offramp.finetune.evaluate import METRICS, Evaluation, SideResult

_LABELS = {
    "exact": "exact match",
    "fields": "field match (share of fields)",
    "all_fields": "all fields match",
    "schema_valid": "schema valid",
    "similarity": "similarity to reference",
}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(ev: Evaluation) -> list[tuple[str, str, str]]:
    sides: list[SideResult] = [ev.candidate] + ([ev.baseline] if ev.baseline else [])
    rows = []
    for metric in METRICS:
        values = [s.mean(metric) for s in sides]
        if all(v is None for v in values):
            continue
        rows.append((_LABELS[metric], *[_fmt(v) for v in values], *([""] * (2 - len(values)))))
    rows.append(("error rate", *[_fmt(s.error_rate) for s in sides], *([""] * (2 - len(sides)))))
    for q in (0.5, 0.95):
        rows.append(
            (
                f"latency p{round(q * 100)} (s)",
                *[_fmt(s.latency(q), 2) for s in sides],
                *([""] * (2 - len(sides))),
            )
        )
    rows.append(
        (
            "cost (USD)",
            *[_usd(s) for s in sides],
            *([""] * (2 - len(sides))),
        )
    )
    return [(r[0], r[1], r[2]) for r in rows]


def _usd(side: SideResult) -> str:
    if side.cost is None or side.cost.usd is None:
        return "not priced"
    return f"{side.cost.usd:.6f}"


def verdict_line(ev: Evaluation) -> str:
    failures = ev.failures()
    if not failures:
        return f"PASS: {ev.candidate.model} on {len(ev.examples)} examples"
    return f"FAIL: {ev.candidate.model}: " + "; ".join(failures)


def markdown(ev: Evaluation) -> str:
    base = ev.baseline.model if ev.baseline else "-"
    lines = [
        f"# Evaluation: {ev.candidate.model} vs {base}",
        "",
        f"{len(ev.examples)} held-out examples. **{verdict_line(ev)}**",
        "",
        f"| metric | candidate `{ev.candidate.model}` | baseline `{base}` |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in _rows(ev)]
    lines += ["", "## Examples the candidate missed", ""]
    missed = [(i, s) for i, s in enumerate(ev.candidate.scores) if not (s.exact or s.all_fields)][
        :20
    ]
    for i, score in missed:
        answer = ev.candidate.answers[i].text.replace("\n", " ")[:160]
        reference = ev.examples[i].answer.replace("\n", " ")[:160]
        lines.append(f"- ex-{i}: expected `{reference}`, got `{answer or score.error}`")
    if not missed:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def html(ev: Evaluation) -> str:
    base = ev.baseline.model if ev.baseline else "-"
    rows = "".join(
        f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(c)}</td></tr>"
        for a, b, c in _rows(ev)
    )
    status = "pass" if ev.passed else "fail"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Evaluation: {escape(ev.candidate.model)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ddd}.pass{color:#070}.fail{color:#b00}</style></head><body>"
        f"<h1>Evaluation: {escape(ev.candidate.model)} vs {escape(base)}</h1>"
        f"<p class='{status}'><b>{escape(verdict_line(ev))}</b></p>"
        f"<table><tr><th>metric</th><th>candidate</th><th>baseline</th></tr>{rows}</table>"
        "</body></html>\n"
    )
