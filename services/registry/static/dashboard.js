// streamops ops dashboard: polls the registry's /dashboard/api and redraws with Plotly.js.
// Plain script, no build step. A viewer token (when the registry needs one) comes from
// `#token=...` in the address or the login form, and is kept in sessionStorage only.
// Every string from a record reaches the page as text: DOM through `el` (text nodes and
// setAttribute, never innerHTML), charts through `plain`, because Plotly reads a subset of HTML
// (<a href>, <b>, <br>, <span style>, entities) in every label, name and hover text it draws.
"use strict";

const REFRESH_S = 5;
const API = "/dashboard/api";
const COLOURS = { red: "#d62728", amber: "#ff9f1c", green: "#2ca02c", grey: "#9aa0a6" };
const PLOT_CONFIG = { displaylogo: false, responsive: true };
const state = { feature: null, timer: null };

function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("streamops-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("streamops-token");
}

async function getJSON(path) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const res = await fetch(API + path, { headers });
  if (res.status === 401) {
    document.getElementById("login").hidden = false;
    throw new Error("the registry needs a viewer token");
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.message || res.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

// Text for Plotly: `&`, `<` and `>` as entities, which Plotly draws as those characters.
function plain(text) {
  return String(text ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const fmt = {
  num: (v, d = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(d)),
  pct: (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`),
  time: (ms) => new Date(ms).toLocaleString(),
};

function table(headers, rows) {
  const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
  const body = rows.length
    ? rows.map((r) => el("tr", {}, ...r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))
    : [el("tr", {}, el("td", { colspan: String(headers.length), class: "muted" }, "nothing yet"))];
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function num(v) {
  return el("td", { class: "num" }, v);
}

function dot(colour, title) {
  return el("span", { class: `dot ${colour}`, title: title || colour });
}

function panel(id, title, extra) {
  return el("div", { class: "panel" }, el("h3", {}, title), ...(extra ? [extra] : []),
    el("div", { class: "chart", id }));
}

function layout(extra = {}) {
  return Object.assign({
    margin: { l: 50, r: 50, t: 10, b: 40 },
    legend: { orientation: "h", y: -0.2 },
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
    font: { size: 11 },
  }, extra);
}

function draw(id, traces, extra, empty) {
  const node = document.getElementById(id);
  if (!node) return;
  const lay = layout(extra);
  const hasData = traces.some((t) => (t.x || t.labels || t.y || []).length > 0);
  if (!hasData) {
    lay.annotations = [{ text: plain(empty || "no data yet"), showarrow: false, xref: "paper",
      yref: "paper", x: 0.5, y: 0.5, font: { color: "#9aa0a6", size: 14 } }];
  }
  Plotly.react(node, traces, lay, PLOT_CONFIG);
}

function setStatus(text, error) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = error ? "status error" : "status";
}

// ---------- overview ----------

function inventory(data) {
  const rows = data.deployments.map((d) => {
    const live = d.live || {};
    const w = d.window || {};
    const acc = w.metrics ? (w.metrics.accuracy ?? w.metrics.rmse) : null;
    return [
      el("td", {}, dot(d.health.colour, d.health.reasons.join("; "))),
      el("td", {}, el("a", { href: `/dashboard/deployments/${encodeURIComponent(d.name)}` }, d.name)),
      d.champion,
      d.challengers.join(", ") || "–",
      `${d.mode} · r${d.revision}`,
      num(fmt.num(live.predictions_per_s)),
      num(`${fmt.num(live.latency_p50_ms, 0)} / ${fmt.num(live.latency_p99_ms, 0)}`),
      num(fmt.pct(live.error_rate)),
      num(fmt.pct(live.deadletter_rate ?? w.deadletter_rate)),
      num(fmt.num(w.weighted_drift, 3)),
      num(fmt.num(acc, 3)),
      num(fmt.pct(w.label_coverage)),
      d.health.reasons.join("; ") || "ok",
    ];
  });
  const t = table(["", "deployment", "champion", "challengers", "mode", "pred/s",
    "latency p50/p99 ms", "errors", "dead letters", "drift", "accuracy", "labels", "health"], rows);
  t.id = "inventory";
  return t;
}

function overviewCharts(data) {
  const rate = [];
  const lat = [];
  for (const [name, points] of Object.entries(data.live)) {
    const x = points.map((p) => p.t);
    rate.push({ x, y: points.map((p) => p.predictions_per_s), name: plain(name), mode: "lines" });
    lat.push({ x, y: points.map((p) => p.latency_p99_ms), name: plain(`${name} p99`), mode: "lines" });
  }
  draw("c-rates", rate, { xaxis: { type: "date" }, yaxis: { title: { text: "pred/s" } } });
  draw("c-latency-all", lat, { xaxis: { type: "date" }, yaxis: { title: { text: "ms" } } });
}

async function overview(first) {
  const data = await getJSON("/overview");
  const app = document.getElementById("app");
  const r = data.topic_rates || {};
  const cards = el("div", { class: "cards" },
    ...[["deployments", data.deployments.length],
      ["events/s", fmt.num(r.events)],
      ["predictions/s", fmt.num(r.predictions)],
      ["dead letters/s", fmt.num(r.deadletter, 2)],
      ["red / amber", `${data.deployments.filter((d) => d.health.colour === "red").length} / ${
        data.deployments.filter((d) => d.health.colour === "amber").length}`]]
      .map(([k, v]) => el("div", { class: "card" }, el("div", { class: "v" }, String(v)),
        el("div", { class: "k" }, k))));
  const reasons = table(["dead letters (sampled, last 5 min)", "count"],
    Object.entries(data.deadletter_reasons).map(([k, v]) => [k, num(String(v))]));
  if (first) {
    app.replaceChildren(el("h2", {}, "System"), el("div", { id: "cards" }),
      el("h2", {}, "Deployment inventory"), el("div", { id: "inv" }),
      el("div", { class: "grid" }, panel("c-rates", "Predictions/s by deployment (live)"),
        panel("c-latency-all", "Latency p99 by deployment (live)")),
      el("h2", {}, "Dead letters"), el("div", { id: "reasons" }));
  }
  document.getElementById("cards").replaceChildren(cards);
  document.getElementById("inv").replaceChildren(inventory(data));
  const sources = data.deadletter_sources || {};
  document.getElementById("reasons").replaceChildren(
    el("p", {}, `bad source records (sampled, last 5 min): ${sources.summary || "none"}`), reasons);
  overviewCharts(data);
}

// ---------- one deployment ----------

function firstMetric(windows) {
  for (const w of windows) {
    for (const m of ["accuracy", "auc", "f1", "rmse", "mae"]) if (m in w.metrics) return m;
  }
  return null;
}

function figure(r) {
  const what = r.metric === r.kind ? r.kind : `${r.kind} ${r.metric}`;
  return r.feature ? `${what} (${r.feature})` : what;
}

function liveCharts(d) {
  const x = d.live.map((p) => p.t);
  draw("c-throughput", [
    { x, y: d.live.map((p) => p.predictions_per_s), name: "predictions/s", mode: "lines" },
    { x, y: d.live.map((p) => p.events_per_s), name: "events/s", mode: "lines" },
  ], { xaxis: { type: "date" } }, "waiting for the sampler");
  draw("c-latency", [
    { x, y: d.live.map((p) => p.latency_p50_ms), name: "p50", mode: "lines" },
    { x, y: d.live.map((p) => p.latency_p99_ms), name: "p99", mode: "lines" },
  ], { xaxis: { type: "date" }, yaxis: { title: { text: "event → prediction, ms" } } },
  "waiting for the sampler");
  draw("c-errors", [
    { x, y: d.live.map((p) => p.error_rate), name: "error rate", mode: "lines" },
    { x, y: d.live.map((p) => p.deadletter_rate), name: "dead-letter rate", mode: "lines" },
  ], { xaxis: { type: "date" }, yaxis: { tickformat: ".1%", rangemode: "tozero" } },
  "waiting for the sampler");
  const wx = d.windows.map((w) => w.window_start);
  draw("c-windows", [
    { x: wx, y: d.windows.map((w) => w.predictions_per_s), name: "predictions/s", type: "bar",
      opacity: 0.5 },
    { x: wx, y: d.windows.map((w) => w.deadletter_rate), name: "dead-letter rate",
      mode: "lines+markers", yaxis: "y2" },
    { x: wx, y: d.windows.map((w) => w.out_of_range_rate), name: "out of range (worst feature)",
      mode: "lines+markers", yaxis: "y2" },
    { x: wx, y: d.windows.map((w) => w.missing_rate), name: "missing (worst feature)",
      mode: "lines+markers", yaxis: "y2" },
  ], { xaxis: { type: "date" }, yaxis: { title: { text: "pred/s" } },
    yaxis2: { overlaying: "y", side: "right", tickformat: ".1%", rangemode: "tozero" } });
}

function driftCharts(d) {
  const f = d.features;
  draw("c-drift-importance", [{
    x: f.latest.map((r) => r.importance), y: f.latest.map((r) => r.drift),
    text: f.latest.map((r) => plain(r.name)), mode: "markers+text", textposition: "top center",
    marker: { size: 10, color: f.latest.map((r) => r.drift), colorscale: "YlOrRd" },
    name: "features",
  }], { xaxis: { title: { text: "importance" } }, yaxis: { title: { text: "drift (PSI)" } },
    showlegend: false });
  const wx = f.windows;
  const overTime = Object.entries(f.over_time).map(([name, ys]) => (
    { x: wx, y: ys, name: plain(name), mode: "lines+markers" }));
  overTime.push({ x: d.windows.map((w) => w.window_start), y: d.windows.map((w) => w.prediction_psi),
    name: "prediction PSI", mode: "lines", line: { dash: "dash", color: "#333" } });
  draw("c-drift-time", overTime, { xaxis: { type: "date" } });
  const metric = firstMetric(d.windows);
  const x = d.windows.map((w) => w.window_start);
  draw("c-accuracy", [
    { x, y: d.windows.map((w) => (metric ? w.metrics[metric] ?? null : null)),
      name: metric || "accuracy", mode: "lines+markers" },
    { x, y: d.windows.map((w) => w.label_coverage), name: "label coverage", type: "bar",
      yaxis: "y2", opacity: 0.3,
      text: d.windows.map((w) => plain(`${w.labels_joined} labels joined, ${w.unknown_labels} of an unknown class`)),
      hovertemplate: "%{y:.0%} label coverage<br>%{text}<extra></extra>", textposition: "none" },
  ], { xaxis: { type: "date" }, yaxis: { title: { text: metric || "" } },
    yaxis2: { overlaying: "y", side: "right", range: [0, 1], tickformat: ".0%" } });
  const classes = new Set();
  for (const p of d.live) if (p.answers && p.answers.classes) Object.keys(p.answers.classes).forEach((c) => classes.add(c));
  const lx = d.live.map((p) => p.t);
  const traces = [...classes].sort().map((c) => ({
    x: lx, y: d.live.map((p) => (p.answers && p.answers.classes ? p.answers.classes[c] ?? 0 : null)),
    name: plain(`class ${c}`), stackgroup: "one", mode: "lines",
  }));
  if (!classes.size) {
    for (const q of ["p10", "p50", "p90"]) {
      traces.push({ x: lx, y: d.live.map((p) => (p.answers && p.answers.quantiles ? p.answers.quantiles[q] : null)),
        name: q, mode: "lines" });
    }
  }
  const base = d.baseline_classes || {};
  const total = Object.values(base).reduce((a, b) => a + b, 0);
  if (classes.size && total && lx.length) {
    for (const c of [...classes].sort()) {
      if (c in base) traces.push({ x: [lx[0], lx[lx.length - 1]], y: [base[c] / total, base[c] / total],
        name: plain(`baseline ${c}`), mode: "lines", line: { dash: "dot", color: "#333" } });
    }
  }
  draw("c-predictions", traces, { xaxis: { type: "date" },
    yaxis: { tickformat: classes.size ? ".0%" : undefined } }, "waiting for the sampler");
}

async function distributionChart(name) {
  const names = Object.keys(state.featureNames || {});
  if (!state.feature && names.length) state.feature = names[0];
  if (!state.feature) return draw("c-distribution", [], {});
  let data;
  try {
    data = await getJSON(`/deployments/${encodeURIComponent(name)}/features/${encodeURIComponent(state.feature)}`);
  } catch (e) {
    return draw("c-distribution", [], {}, e.message);
  }
  // A category axis: with categories "0".."4" an auto-typed axis turns numeric and drops others.
  draw("c-distribution", [
    { x: data.labels.map(plain), y: data.baseline, type: "bar", name: "baseline" },
    { x: data.labels.map(plain), y: data.current, type: "bar", name: `current (${data.current_count} sampled)` },
  ], { barmode: "group", xaxis: { type: "category" }, yaxis: { tickformat: ".0%" } });
}

function alertsChart(d) {
  const b = d.breaches;
  const colour = (r) => (r.status === "resolved" ? COLOURS.green : r.severity === "critical" ? COLOURS.red : COLOURS.amber);
  draw("c-alerts", [{
    x: b.map((r) => r.observed_at), y: b.map((r) => plain(figure(r))), mode: "markers", name: "transitions",
    marker: { size: 11, color: b.map(colour), symbol: b.map((r) => (r.status === "resolved" ? "circle-open" : "circle")) },
    text: b.map((r) => plain(`${r.status} ${r.severity}: ${fmt.num(r.value, 3)} vs ${fmt.num(r.threshold, 3)}`)),
  }], { xaxis: { type: "date" }, margin: { l: 170, r: 20, t: 10, b: 40 }, showlegend: false },
  "no breaches");
}

function lineageChart(d) {
  const nodes = d.lineage.nodes;
  const byId = Object.fromEntries(nodes.map((n, i) => [n.model_id, { ...n, y: i % 2 ? 1 : 0 }]));
  const traces = d.lineage.edges.map((e) => ({
    x: [byId[e.parent].version, byId[e.child].version], y: [byId[e.parent].y, byId[e.child].y],
    mode: "lines", line: { color: "#9aa0a6" }, hoverinfo: "skip", showlegend: false,
  }));
  const all = Object.values(byId);
  traces.push({
    x: all.map((n) => n.version), y: all.map((n) => n.y), mode: "markers+text", name: "versions",
    text: all.map((n) => plain(`v${n.version} ${n.estimator}${n.champion ? " ★" : ""}`)),
    textposition: "top center", showlegend: false,
    marker: { size: 16, color: all.map((n) => (n.champion ? COLOURS.green : "#4e79a7")) },
    hovertext: all.map((n) => plain(`${n.model_id.slice(0, 12)} ${JSON.stringify(n.metrics)}`)),
  });
  draw("c-lineage", traces, { xaxis: { title: { text: "version" }, dtick: 1 },
    yaxis: { visible: false, range: [-0.6, 1.8] } });
}

function tables(d) {
  document.getElementById("firing").replaceChildren(table(["figure", "severity", "value", "threshold", "since"],
    d.firing.map((r) => [figure(r),
      el("span", { class: `pill ${r.severity === "critical" ? "firing" : "warning"}` }, r.severity),
      num(fmt.num(r.value, 3)), num(fmt.num(r.threshold, 3)), fmt.time(r.observed_at)])));
  document.getElementById("versions").replaceChildren(table(["version", "model id", "estimator", "origin", "created", "holdout metrics"],
    d.lineage.nodes.map((n) => [`v${n.version}${n.champion ? " (champion)" : ""}`, n.model_id.slice(0, 16),
      n.estimator, n.origin, fmt.time(n.created_at),
      Object.entries(n.metrics).map(([k, v]) => `${k} ${fmt.num(v, 3)}`).join(", ")])));
  // A release controller's request carries its decision (shadow, promote, retire, rollback) and evidence.
  const decision = (e) => { try { return (JSON.parse(e.payload || "{}").evidence || {}).decision || ""; } catch { return ""; } };
  document.getElementById("audit").replaceChildren(table(["at", "action", "decision", "actor", "reason", "request"],
    d.audit.map((e) => [fmt.time(e.at), e.action, decision(e), e.actor, e.reason, (e.request_id || "").slice(0, 12)])));
}

async function deployment(name, first) {
  const d = await getJSON(`/deployments/${encodeURIComponent(name)}`);
  const app = document.getElementById("app");
  state.featureNames = Object.fromEntries(d.features.latest.map((f) => [f.name, f.importance]));
  if (!Object.keys(state.featureNames).length) state.featureNames = d.importances;
  if (first) {
    document.getElementById("crumbs").replaceChildren(el("a", { href: "/dashboard" }, "inventory"), " / ", name);
    const select = el("select", { id: "feature" });
    select.addEventListener("change", () => { state.feature = select.value; distributionChart(name); });
    app.replaceChildren(
      el("h2", { id: "title" }), el("div", { id: "summary", class: "muted" }),
      el("div", { class: "grid" },
        panel("c-throughput", "Predictions/s (live, sampled)"),
        panel("c-latency", "Latency p50 / p99 (live, sampled)"),
        panel("c-errors", "Error and dead-letter rate (live, sampled)"),
        panel("c-windows", "Per window: predictions/s, dead letters, data quality"),
        panel("c-drift-importance", "Feature drift against importance (latest window)"),
        panel("c-drift-time", "Drift per feature over time"),
        panel("c-distribution", "Baseline against current distribution", select),
        panel("c-accuracy", "Accuracy over time with label coverage"),
        panel("c-predictions", "Prediction distribution over time (served answers)"),
        panel("c-alerts", "Alerts timeline"),
        panel("c-lineage", "Model versions and lineage")),
      el("h2", {}, "Firing now"), el("div", { id: "firing" }),
      el("h2", {}, "Model versions"), el("div", { id: "versions" }),
      el("h2", {}, "Governance audit trail"), el("div", { id: "audit" }));
  }
  const select = document.getElementById("feature");
  const names = Object.keys(state.featureNames).sort((a, b) => state.featureNames[b] - state.featureNames[a]);
  if (select.options.length !== names.length) {
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (state.feature) select.value = state.feature;
  }
  const dep = d.deployment;
  document.getElementById("title").replaceChildren(dot(d.health.colour), ` ${dep.name}`);
  document.getElementById("summary").textContent = `champion ${dep.champion.model_name} v${dep.champion.version}` +
    ` · challengers ${dep.challengers.map((c) => `v${c.model.version} (${c.weight})`).join(", ") || "none"}` +
    ` · ${dep.external ? "external" : dep.mode} · revision ${dep.revision} · window ${dep.window_seconds} s` +
    (dep.label_delay_seconds ? ` · labels within ${dep.label_delay_seconds} s` : "") +
    ` · health: ${d.health.reasons.join("; ") || "ok"}`;
  liveCharts(d);
  driftCharts(d);
  alertsChart(d);
  lineageChart(d);
  tables(d);
  await distributionChart(name);
}

// ---------- refresh loop ----------

async function refresh(first) {
  const m = location.pathname.match(/^\/dashboard\/deployments\/([^/]+)\/?$/);
  try {
    if (m) await deployment(decodeURIComponent(m[1]), first);
    else await overview(first);
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    return true;
  } catch (e) {
    setStatus(e.message, true);
    return false;
  }
}

document.getElementById("every").textContent = String(REFRESH_S);
document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("streamops-token", document.getElementById("token").value);
  document.getElementById("login").hidden = true;
  start();
});

async function start() {
  clearTimeout(state.timer);
  let drawn = await refresh(true);
  const tick = async () => {
    drawn = (await refresh(!drawn)) || drawn;
    state.timer = setTimeout(tick, REFRESH_S * 1000);
  };
  state.timer = setTimeout(tick, REFRESH_S * 1000);
}

start();
