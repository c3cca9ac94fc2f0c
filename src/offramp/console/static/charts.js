// SVG charts for the console: bars and lines over time buckets, drawn from the numbers
// the page fetched. Every mark carries its number in data-value.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 600, H = 170, LEFT = 56, RIGHT = 8, TOP = 18, BOTTOM = 18;

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, anchor) {
    const t = el("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    t.textContent = content;
    return t;
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function frame(container, times, top, fmt) {
    container.textContent = "";
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, container);
    el("line", { x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM, class: "axis" }, svg);
    el("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM, class: "axis" }, svg);
    text(svg, LEFT - 4, TOP + 4, fmt(top), "end");
    text(svg, LEFT - 4, H - BOTTOM, fmt(0), "end");
    if (times.length) {
      text(svg, LEFT, H - 4, clock(times[0]));
      text(svg, W - RIGHT, H - 4, clock(times[times.length - 1]), "end");
    }
    return svg;
  }

  function scaleY(top) {
    return (v) => H - BOTTOM - (top > 0 ? (v / top) * (H - TOP - BOTTOM) : 0);
  }

  // One bar per bucket.
  function bars(container, times, values, fmt) {
    const top = Math.max(0, ...values) || 1;
    const svg = frame(container, times, top, fmt);
    const y = scaleY(top);
    const step = (W - LEFT - RIGHT) / Math.max(values.length, 1);
    const g = el("g", { class: "series s0", "data-series": "bars" }, svg);
    values.forEach((v, i) => {
      const rect = el("rect", {
        x: LEFT + i * step + 1, y: y(v), width: Math.max(step - 2, 1), height: H - BOTTOM - y(v),
        "data-value": v, "data-t": times[i],
      }, g);
      el("title", {}, rect).textContent = `${clock(times[i])}: ${fmt(v)}`;
    });
  }

  // Lines, one per series of {name, values} (null values leave a gap).
  function lines(container, times, series, fmt) {
    const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
    const top = Math.max(0, ...all) || 1;
    const svg = frame(container, times, top, fmt);
    const y = scaleY(top);
    const step = (W - LEFT - RIGHT) / Math.max(times.length, 1);
    const x = (i) => LEFT + (i + 0.5) * step;
    const legend = el("g", { class: "legend" }, svg);
    series.forEach((s, n) => {
      const g = el("g", { class: `series s${n}`, "data-series": s.name }, svg);
      let d = "", pen = "M";
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = "M"; return; }
        d += `${pen}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
        pen = "L";
        const dot = el("circle", { cx: x(i), cy: y(v), r: 2.5, "data-value": v, "data-t": times[i] }, g);
        el("title", {}, dot).textContent = `${s.name} ${clock(times[i])}: ${fmt(v)}`;
      });
      if (d) el("path", { d: d, class: "line" }, g);
      const lx = LEFT + 10 + n * 130;
      el("rect", { x: lx, y: 3, width: 10, height: 10, class: `s${n}` }, legend);
      text(legend, lx + 14, 12, s.name);
    });
  }

  // A small horizontal meter: used against limit (no limit: an empty meter).
  function meter(used, limit) {
    const span = document.createElement("span");
    span.className = "meter";
    const svg = el("svg", { viewBox: "0 0 80 8", preserveAspectRatio: "none" }, span);
    const share = limit ? Math.min(1, used / limit) : 0;
    el("rect", { x: 0, y: 0, width: 80 * share, height: 8, class: share >= 1 ? "s3" : "s0" }, svg);
    return span;
  }

  window.Charts = { bars: bars, lines: lines, meter: meter };
})();
