// The console's pages: each fetches its JSON from /console/api and redraws itself; the
// page on screen is fetched again every few seconds. Changes carry the CSRF token.
"use strict";
(function () {
  const POLL_MS = 5000;
  // the longer the window, the more rows each poll reads and the less a few seconds matter
  const WINDOW_POLL_MS = { "15m": 5000, "1h": 5000, "6h": 15000, "24h": 30000, "7d": 60000, "30d": 120000 };
  const PAGES = ["overview", "routes", "models", "keys", "usage", "tasks"];
  const state = { role: null, csrf: null, page: null, tasks: null, task: null, busy: false, last: 0 };
  const $ = (selector, root) => (root || document).querySelector(selector);

  // --- formatting: the tests read these strings back, keep them plain ---
  const count = (n) => String(n);
  const usd = (v) => "$" + Number(v).toFixed(6);
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%");
  const ms = (v) => (v === null || v === undefined ? "–" : (v < 10 ? v.toFixed(1) : Math.round(v)) + " ms");
  const mib = (b) => (b / 1048576).toFixed(1) + " MiB";
  const when = (t) => new Date(t * 1000).toLocaleString();

  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") n.className = v; else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    return n;
  }

  function row(cells, attrs) {
    return node("tr", attrs, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : node("td", {}, c))));
  }

  function tiles(container, items) {
    container.textContent = "";
    for (const [metric, label, text, raw] of items) {
      container.append(node("div", { class: "tile", "data-metric": metric, "data-value": raw === null ? "" : raw },
        node("div", { class: "label" }, label), node("div", { class: "value" }, text)));
    }
  }

  function problem(message) {
    const p = $("#problem");
    p.textContent = message || "";
    p.hidden = !message;
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
    if (opts.body !== undefined) {
      opts.body = JSON.stringify(opts.body);
      opts.headers["Content-Type"] = "application/json";
    }
    const url = path.startsWith("/console/") ? path : "/console/api" + path;
    const response = await fetch(url, opts);
    if (response.status === 401) { location.reload(); throw new Error("signed out"); }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }

  // --- overview ---
  async function overview() {
    const d = await api("/overview?window=" + $("#window").value);
    const t = d.total;
    tiles($("#overview-tiles"), [
      ["requests", "Requests", count(t.requests), t.requests],
      ["cost_usd", "Spend", usd(t.cost_usd), t.cost_usd],
      ["openai_cost_usd", "OpenAI-equivalent cost", usd(t.openai_cost_usd), t.openai_cost_usd],
      ["savings_usd", "Savings", usd(t.savings_usd), t.savings_usd],
      ["p50_latency_ms", "Latency p50", ms(t.p50_latency_ms), t.p50_latency_ms],
      ["p95_latency_ms", "Latency p95", ms(t.p95_latency_ms), t.p95_latency_ms],
      ["p50_ttft_ms", "TTFT p50", ms(t.p50_ttft_ms), t.p50_ttft_ms],
      ["p95_ttft_ms", "TTFT p95", ms(t.p95_ttft_ms), t.p95_ttft_ms],
      ["error_rate", "Error rate", pct(t.requests ? t.error_rate : null), t.error_rate],
      ["cache_hit_rate", "Cache hit rate", pct(t.requests - t.errors ? t.cache_hit_rate : null), t.cache_hit_rate],
    ]);
    const b = d.buckets, times = b.map((x) => x.t);
    Charts.bars($("#chart-requests"), times, b.map((x) => x.requests), count);
    Charts.lines($("#chart-cost"), times, [
      { name: "spend", values: b.map((x) => x.cost_usd) },
      { name: "OpenAI-equivalent", values: b.map((x) => x.openai_cost_usd) },
      { name: "savings", values: b.map((x) => x.savings_usd) },
    ], usd);
    Charts.lines($("#chart-latency"), times, [
      { name: "p50", values: b.map((x) => x.p50_latency_ms) },
      { name: "p95", values: b.map((x) => x.p95_latency_ms) },
      { name: "TTFT p95", values: b.map((x) => x.p95_ttft_ms) },
    ], ms);
    Charts.lines($("#chart-rates"), times, [
      { name: "error rate", values: b.map((x) => (x.requests ? x.error_rate : null)) },
      { name: "cache hit rate", values: b.map((x) => (x.requests - x.errors ? x.cache_hit_rate : null)) },
    ], pct);
    const body = $("#alerts tbody");
    body.textContent = "";
    for (const a of d.alerts) {
      const badge = node("span", { class: "badge state-" + a.state.replace(" ", "-") }, a.state);
      body.append(row([a.name, node("td", {}, badge), a.value, a.threshold, a.summary], { "data-alert": a.name, "data-state": a.state }));
    }
  }

  // --- routes ---
  async function routes() {
    const d = await api("/routes?window=" + $("#window").value);
    const list = $("#routes-list");
    list.textContent = "";
    for (const r of d.data) {
      const h = r.history ? r.history.total : { requests: 0, errors: 0, error_rate: 0, p50_latency_ms: null, p95_latency_ms: null, cost_usd: 0 };
      const box = node("div", { class: "route", "data-route": r.name },
        node("h2", {}, r.name, node("span", { class: "muted" }, `  ${r.kind} · ${r.strategy}` + (r.aliases.length ? ` · also ${r.aliases.join(", ")}` : ""))));
      const t = node("div", { class: "tiles" });
      tiles(t, [
        ["requests", "Requests", count(h.requests), h.requests],
        ["error_rate", "Error rate", pct(h.requests ? h.error_rate : null), h.error_rate],
        ["p50_latency_ms", "Latency p50", ms(h.p50_latency_ms), h.p50_latency_ms],
        ["p95_latency_ms", "Latency p95", ms(h.p95_latency_ms), h.p95_latency_ms],
        ["cost_usd", "Spend", usd(h.cost_usd), h.cost_usd],
      ]);
      box.append(t);
      const table = node("table", {}, node("thead", {}, row(["Deployment", "Provider", "Breaker", "Latency (EWMA)", "Latency p50", "Error rate (recent)", "Attempts", "Failures"].map((x) => node("th", {}, x)))));
      const tb = node("tbody");
      for (const dep of r.deployments) {
        const breaker = node("span", { class: "badge breaker-" + dep.breaker }, dep.breaker + (dep.retry_in_s ? ` (${dep.retry_in_s} s)` : ""));
        tb.append(row([dep.id, dep.provider, node("td", {}, breaker), ms(dep.ewma_ms), ms(dep.p50_ms), pct(dep.error_rate), count(dep.requests), count(dep.failures)], { "data-deployment": dep.id, "data-breaker": dep.breaker }));
      }
      table.append(tb);
      box.append(table);
      if (r.history) {
        const b = r.history.buckets, times = b.map((x) => x.t);
        const lat = node("div", { class: "chart" }), err = node("div", { class: "chart" });
        box.append(node("div", { class: "charts" },
          node("figure", {}, node("figcaption", {}, "Latency p50 / p95 (ms)"), lat),
          node("figure", {}, node("figcaption", {}, "Error rate"), err)));
        Charts.lines(lat, times, [
          { name: "p50", values: b.map((x) => x.p50_latency_ms) },
          { name: "p95", values: b.map((x) => x.p95_latency_ms) },
        ], ms);
        Charts.lines(err, times, [{ name: "error rate", values: b.map((x) => (x.requests ? x.error_rate : null)) }], pct);
      }
      list.append(box);
    }
  }

  // --- models ---
  async function models() {
    const d = await api("/models");
    const p = d.process;
    tiles($("#process-tiles"), [
      ["rss_bytes", "Process memory (RSS)", mib(p.rss_bytes), p.rss_bytes],
      ["uptime_s", "Up for", Math.round(p.uptime_s) + " s", p.uptime_s],
      ["ledger_queue", "Ledger records waiting", count(p.ledger_queue), p.ledger_queue],
      ["ledger_dropped", "Ledger records dropped", count(p.ledger_dropped), p.ledger_dropped],
      ["max_queue", "Queue allowed per model", count(p.max_queue), p.max_queue],
    ]);
    const body = $("#models-table tbody");
    body.textContent = "";
    for (const m of d.data) {
      body.append(row([m.name, m.backend, m.kind, m.loaded ? "yes" : "no", m.slots === null ? "–" : count(m.slots), count(m.busy), count(m.queued), count(m.context_length), m.source], { "data-model": m.name }));
    }
  }

  // --- keys ---
  function limitCell(used, limit, text) {
    return node("td", { "data-used": used, "data-limit": limit === null ? "" : limit }, Charts.meter(used, limit), text);
  }

  async function keys() {
    const d = await api("/keys" + ($("#show-revoked").checked ? "?revoked=true" : ""));
    const body = $("#keys-table tbody");
    body.textContent = "";
    for (const k of d.data) {
      const u = k.usage;
      const revoke = state.role === "admin" && k.revoked_at === null
        ? node("button", { class: "danger", type: "button", "data-revoke": k.id }, "Revoke") : (k.revoked_at ? "revoked" : "");
      body.append(row([
        node("td", {}, node("code", {}, k.prefix + "…"), " ", node("span", { class: "muted" }, k.id)),
        k.name, when(k.created_at), count(u.requests),
        limitCell(u.recent_requests, k.rpm, `${u.recent_requests} / ${k.rpm === null ? "∞" : k.rpm}`),
        limitCell(u.recent_tokens, k.tpm, `${u.recent_tokens} / ${k.tpm === null ? "∞" : k.tpm}`),
        limitCell(u.spent_usd, k.budget_usd, `${usd(u.spent_usd)} / ${k.budget_usd === null ? "∞" : usd(k.budget_usd)}`),
        k.models === null ? "all" : k.models.join(", "),
        node("td", {}, revoke),
      ], { "data-key": k.id, "data-name": k.name, "data-requests": u.requests, "data-spent": u.spent_usd }));
    }
  }

  async function createKey(event) {
    event.preventDefault();
    const f = event.target, body = { name: f.name.value.trim() };
    for (const field of ["rpm", "tpm"]) if (f[field].value) body[field] = parseInt(f[field].value, 10);
    if (f.budget_usd.value) body.budget_usd = parseFloat(f.budget_usd.value);
    const listed = f.models.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (listed.length) body.models = listed;
    try {
      const made = await api("/keys", { method: "POST", body: body });
      $("#new-secret-value").textContent = made.secret;
      $("#new-secret").hidden = false;
      $("#new-secret").dataset.key = made.id;
      f.reset();
      problem("");
      await refresh(true);
    } catch (e) { problem(e.message); }
  }

  async function revokeKey(event) {
    const button = event.target.closest("button[data-revoke]");
    if (!button) return;
    if (button.dataset.armed !== "yes") {  // a second click confirms
      button.dataset.armed = "yes";
      button.textContent = "Confirm revoke";
      state.busy = true;
      return;
    }
    state.busy = false;
    try {
      await api("/keys/" + encodeURIComponent(button.dataset.revoke), { method: "DELETE" });
      problem("");
      await refresh(true);
    } catch (e) { problem(e.message); }
  }

  // --- usage explorer ---
  function usageQuery() {
    const f = $("#usage-filter"), q = new URLSearchParams();
    for (const name of ["key_id", "model", "route", "endpoint", "task", "status"]) if (f[name].value) q.set(name, f[name].value);
    for (const name of ["since", "until"]) if (f[name].value) q.set(name, String(new Date(f[name].value).getTime() / 1000));
    return q.toString();
  }

  function fillChoices(select, values) {
    const chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const v of values) select.add(new Option(v, v));
    if (chosen && !values.includes(chosen)) select.add(new Option(chosen, chosen));
    select.value = chosen;
  }

  async function usage(force) {
    const q = usageQuery();
    const d = await api("/usage?limit=200" + (force ? "&choices=true" : "") + (q ? "&" + q : ""));
    const f = $("#usage-filter");
    if (d.choices) for (const name of ["key_id", "model", "route", "endpoint", "task"]) fillChoices(f[name], d.choices[name]);
    $("#usage-csv").href = "/console/api/usage.csv" + (q ? "?" + q : "");
    const t = d.totals;
    tiles($("#usage-tiles"), [
      ["requests", "Requests", count(t.requests), t.requests],
      ["errors", "Errors", count(t.errors), t.errors],
      ["prompt_tokens", "Prompt tokens", count(t.prompt_tokens), t.prompt_tokens],
      ["completion_tokens", "Completion tokens", count(t.completion_tokens), t.completion_tokens],
      ["cost_usd", "Spend", usd(t.cost_usd), t.cost_usd],
      ["openai_cost_usd", "OpenAI-equivalent cost", usd(t.openai_cost_usd), t.openai_cost_usd],
      ["savings_usd", "Savings", usd(t.savings_usd), t.savings_usd],
    ]);
    const body = $("#usage-table tbody");
    body.textContent = "";
    for (const r of d.rows) {
      body.append(row([when(r.ts), r.endpoint, r.task || "–", r.key_id || "–", r.model, r.route || "–", r.deployment || "–", count(r.status),
        `${r.prompt_tokens} / ${r.completion_tokens}`, usd(r.cost_usd), usd(r.openai_cost_usd), ms(r.latency_ms), r.cache_hit ? "hit" : ""],
      { "data-request": r.request_id, "data-status": r.status }));
    }
    $("#usage-more").textContent = t.requests > d.rows.length ? `Showing the newest ${d.rows.length} of ${t.requests}; the CSV has them all.` : "";
  }

  // --- tasks ---
  function field(name, schema, required, example) {
    const label = node("label", {}, name + (required ? " *" : ""), schema.description ? node("span", { class: "muted" }, " " + schema.description) : "");
    let input;
    const type = schema.type;
    if (Array.isArray(schema.enum)) {
      input = node("select", { name: name });
      for (const v of schema.enum) input.add(new Option(String(v), JSON.stringify(v)));
      input.dataset.kind = "enum";
      if (example !== undefined) input.value = JSON.stringify(example);
    } else if (type === "string") {
      input = node("textarea", { name: name, rows: schema.maxLength && schema.maxLength <= 200 ? 2 : 6 });
      input.dataset.kind = "string";
      if (example !== undefined) input.value = example;
    } else if (type === "integer" || type === "number") {
      input = node("input", { name: name, type: "number", step: type === "integer" ? "1" : "any" });
      input.dataset.kind = "number";
      if (example !== undefined) input.value = example;
    } else if (type === "boolean") {
      input = node("input", { name: name, type: "checkbox" });
      input.dataset.kind = "boolean";
      input.checked = example === true;
    } else {
      input = node("textarea", { name: name, rows: 3, placeholder: "JSON" });
      input.dataset.kind = "json";
      if (example !== undefined) input.value = JSON.stringify(example, null, 1);
    }
    if (required && input.dataset.kind !== "boolean") input.required = true;
    label.append(input);
    return label;
  }

  function showTask(task) {
    state.task = task;
    for (const a of document.querySelectorAll("#tasks-list a")) a.classList.toggle("current", a.dataset.task === task.name);
    $("#task-name").textContent = task.name;
    $("#task-description").textContent = task.description || "";
    $("#task-meta").textContent = `version ${task.version} · model ${task.model} · up to ${task.max_attempts} attempts` +
      (task.validators.length ? ` · validators: ${task.validators.join(", ")}` : "");
    $("#task-input-schema").textContent = JSON.stringify(task.input_schema, null, 2);
    $("#task-output-schema").textContent = JSON.stringify(task.output_schema, null, 2);
    const fields = $("#task-fields"), props = (task.input_schema && task.input_schema.properties) || {};
    const required = new Set((task.input_schema && task.input_schema.required) || []);
    const example = task.examples.length ? task.examples[0] : {};
    fields.textContent = "";
    for (const [name, schema] of Object.entries(props)) fields.append(field(name, schema, required.has(name), example[name]));
    $("#task-result").hidden = true;
  }

  function taskInput() {
    const input = {};
    for (const el of document.querySelectorAll("#task-fields [name]")) {
      const kind = el.dataset.kind;
      if (kind === "boolean") { input[el.name] = el.checked; continue; }
      if (el.value === "") continue;
      if (kind === "number") input[el.name] = Number(el.value);
      else if (kind === "enum" || kind === "json") input[el.name] = JSON.parse(el.value);
      else input[el.name] = el.value;
    }
    return input;
  }

  async function runTask(event) {
    event.preventDefault();
    const out = $("#task-result");
    out.hidden = false;
    out.textContent = "running…";
    out.dataset.state = "running";
    try {
      const body = { input: taskInput() };
      const model = event.target.model.value.trim();
      if (model) body.model = model;
      const result = await api("/tasks/" + encodeURIComponent(state.task.name), { method: "POST", body: body });
      out.textContent = JSON.stringify(result, null, 2);
      out.dataset.state = "done";
    } catch (e) {
      out.textContent = e.message;
      out.dataset.state = "failed";
    }
  }

  async function tasks() {
    if (state.tasks) return;  // the catalogue does not change while the server runs
    const d = await api("/tasks");
    state.tasks = d.data;
    const list = $("#tasks-list");
    list.textContent = "";
    for (const t of d.data) list.append(node("li", {}, node("a", { href: "#tasks", "data-task": t.name }, t.name)));
    if (d.data.length) showTask(d.data[0]);
  }

  // --- the frame: pages, polling, session ---
  const RENDER = { overview: overview, routes: routes, models: models, keys: keys, usage: usage, tasks: tasks };

  function due() {
    const windowed = state.page === "overview" || state.page === "routes";
    const every = windowed ? WINDOW_POLL_MS[$("#window").value] || POLL_MS : POLL_MS;
    return Date.now() - state.last >= every - 100;
  }

  async function refresh(force) {
    if (!state.page || (state.busy && !force)) return;
    state.last = Date.now();
    try {
      await RENDER[state.page](force);
      $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = state.page;
      if (!force) problem("");
    } catch (e) { if (e.message !== "signed out") problem(e.message); }
  }

  function show() {
    const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
    state.page = page;
    state.busy = false;
    delete document.body.dataset.loaded;
    for (const p of PAGES) $("#page-" + p).hidden = p !== page;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.dataset.page === page);
    refresh(true);
  }

  async function start() {
    const s = await api("/session");
    state.role = s.role;
    state.csrf = s.csrf;
    $("#role").textContent = s.role;
    document.body.classList.add(s.role);
    window.addEventListener("hashchange", show);
    $("#window").addEventListener("change", () => refresh(true));
    $("#new-key").addEventListener("submit", createKey);
    $("#keys-table").addEventListener("click", revokeKey);
    $("#show-revoked").addEventListener("change", () => refresh(true));
    $("#usage-filter").addEventListener("submit", (e) => { e.preventDefault(); refresh(true); });
    $("#task-form").addEventListener("submit", runTask);
    $("#tasks-list").addEventListener("click", (e) => {
      const a = e.target.closest("a[data-task]");
      if (!a) return;
      e.preventDefault();
      showTask(state.tasks.find((t) => t.name === a.dataset.task));
    });
    $("#sign-out").addEventListener("click", async () => {
      await api("/console/sign-out", { method: "POST" }).catch(() => null);
      location.reload();
    });
    show();
    setInterval(() => { if (!document.hidden && state.page !== "tasks" && due()) refresh(false); }, POLL_MS);
  }

  start().catch((e) => problem(e.message));
})();
