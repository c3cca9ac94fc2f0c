"""Small inline-SVG charts for the HTML report (no plotting library, no network)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_W, _H, _PAD = 520, 220, 36


def histogram(
    title: str,
    series: dict[str, Sequence[float]],
    *,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    bins: int = 12,
) -> str:
    """Overlaid histograms, one colour per series, as an ``<svg>`` element."""
    values = [v for vs in series.values() for v in vs]
    if not values:
        return f'<svg class="chart" width="{_W}" height="40"><text x="4" y="24">{escape(title)}: no data</text></svg>'
    low = min(values) if lo is None else lo
    high = max(values) if hi is None else hi
    span = (high - low) or 1.0
    counts = {name: [0] * bins for name in series}
    for name, vs in series.items():
        for v in vs:
            counts[name][min(bins - 1, max(0, int((v - low) / span * bins)))] += 1
    top = max(max(c) for c in counts.values()) or 1
    colours = ["#3b6ea8", "#d9822b", "#3a9d5d"]
    plot_w, plot_h = _W - 2 * _PAD, _H - 2 * _PAD
    bar_w = plot_w / bins / max(1, len(series))
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{_PAD}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>',
    ]
    for s, (name, bucket) in enumerate(counts.items()):
        colour = colours[s % len(colours)]
        for i, count in enumerate(bucket):
            h = plot_h * count / top
            x = _PAD + i * plot_w / bins + s * bar_w
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{_H - _PAD - h:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(name)}: {count}</title></rect>"
            )
        parts.append(
            f'<rect x="{_W - 190}" y="{28 + 16 * s}" width="10" height="10" '
            f'fill="{colour}"/><text x="{_W - 175}" y="{37 + 16 * s}" '
            f'font-size="11">{escape(name)}</text>'
        )
    for value, anchor in ((low, "start"), (high, "end")):
        x = _PAD if anchor == "start" else _W - _PAD
        parts.append(
            f'<text x="{x}" y="{_H - _PAD + 16}" font-size="11" '
            f'text-anchor="{anchor}">{value:.3g}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
