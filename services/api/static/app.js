/* Planners' dashboard of the Nova Corrente API: plain JS, no build step.
 *
 * Routes (location.hash): "#/" overview (pipeline, alerts, accuracy); "#/item/<code>" one
 * material (facts, policy, demand history, forecast fan chart with the reorder point).
 *
 * For automated checks: each chart container gets data-rendered="true" and
 * data-points="<n>" once drawn; <body> gets data-ready="true" when the loads of the current
 * route have finished, and data-error="<message>" if one of them failed.
 */
"use strict";

(() => {
  const KEY_STORE = "nova.apiKey";
  const BUCKET_DAYS = { day: 1, week: 7, month: 30.4375 };
  const FAN_HISTORY = { day: 90, week: 26, month: 24 }; // history periods beside the fan
  const COLORS = {
    demand: "#2f6fb0",
    band: "rgba(47, 111, 176, 0.16)",
    bandEdge: "rgba(47, 111, 176, 0.35)",
    median: "#1c4f86",
    actual: "#333",
    reorder: "#c0392b",
  };
  const $ = (id) => document.getElementById(id);
  let charts = [];
  let routeToken = 0;

  // --- small helpers -------------------------------------------------------------------

  /** Build an element: h("td", {class: "num"}, "12"). Children may be nodes or text. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function fill(container, ...children) {
    container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  const numberFormats = {};
  function num(value, digits = 1) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (!numberFormats[digits]) {
      numberFormats[digits] = new Intl.NumberFormat(undefined, { maximumFractionDigits: digits });
    }
    return numberFormats[digits].format(value);
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : `${num(value * 100, 0)}%`;
  }

  function pct1(value) {
    return value === null || value === undefined ? "–" : `${num(value * 100, 1)}%`;
  }

  function dateTime(value) {
    if (!value) return "–";
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, seconds);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  }

  function ageOf(value) {
    return value ? age((Date.now() - new Date(value).getTime()) / 1000) : "–";
  }

  function short(id) {
    return id ? String(id).slice(0, 8) : "–";
  }

  /** Seconds since the epoch of a "YYYY-MM-DD" date, at UTC midnight (uPlot's x unit). */
  function epoch(day) {
    const [y, m, d] = day.split("-").map(Number);
    return Date.UTC(y, m - 1, d) / 1000;
  }

  function badge(level) {
    return h("span", { class: `badge ${level || "none"}` }, level || "–");
  }

  function message(text, kind = "muted") {
    return h("p", { class: kind }, text);
  }

  function table(headers, rows) {
    return h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)))),
      h("tbody", {}, rows),
    );
  }

  // --- API access ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, title, detail) {
      super(detail ? `${title}: ${detail}` : title);
      this.status = status;
      this.title = title;
      this.detail = detail;
    }
  }

  function storedKey() {
    try {
      return localStorage.getItem(KEY_STORE) || "";
    } catch {
      return "";
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers["X-API-Key"] = key;
    let response;
    try {
      response = await fetch(path, { headers });
    } catch (error) {
      throw new ApiError(0, "API unreachable", error.message);
    }
    if (response.ok) return response.json();
    let problem = {};
    try {
      problem = await response.json(); // application/problem+json
    } catch {
      problem = {};
    }
    if (response.status === 401) showKeyPanel(key);
    throw new ApiError(
      response.status,
      problem.title || response.statusText || `HTTP ${response.status}`,
      problem.detail || "",
    );
  }

  /** What to show in a section that failed; a missing key is explained once, above. */
  function shortText(error) {
    return error.status === 401 ? "API key required (see above)." : error.message;
  }

  function showKeyPanel(rejectedKey) {
    $("key-panel").hidden = false;
    const label = $("key-panel").querySelector("label");
    label.textContent = rejectedKey
      ? "The stored API key was refused; enter another."
      : "This API needs a key.";
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    try {
      if (key) localStorage.setItem(KEY_STORE, key);
      else localStorage.removeItem(KEY_STORE);
    } catch {
      /* storage disabled: the key lasts until the page reloads */
    }
    $("api-key").value = "";
    $("key-panel").hidden = true;
    route();
  });

  /** Run `loader`; on failure show the problem inside `container` and rethrow. */
  async function section(container, loader) {
    try {
      return await loader();
    } catch (error) {
      if (container) fill(container, message(shortText(error), "error"));
      throw error;
    }
  }

  // --- charts ----------------------------------------------------------------------------

  function destroyCharts() {
    for (const chart of charts) chart.destroy();
    charts = [];
  }

  window.addEventListener("resize", () => {
    for (const chart of charts) {
      const width = chart.root.parentElement.clientWidth;
      if (width > 0) chart.setSize({ width, height: chart.height });
    }
  });

  function chartWidth(container) {
    return Math.max(320, container.clientWidth || 800);
  }

  function markRendered(container, points, extra = {}) {
    container.dataset.rendered = "true";
    container.dataset.points = String(points);
    for (const [name, value] of Object.entries(extra)) container.dataset[name] = String(value);
  }

  function markEmpty(container, text) {
    container.dataset.rendered = "false";
    container.dataset.points = "0";
    delete container.dataset.reorderLine;
    delete container.dataset.reorderPerBucket;
    fill(container, message(text, "empty"));
  }

  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

  /** Writes "reorder point" beside the horizontal line (series `index`), on the canvas. */
  function labelLinePlugin(index, text) {
    return {
      hooks: {
        draw: (u) => {
          const value = u.data[index].find((v) => v !== null);
          if (value === undefined || !u.series[index].show) return;
          const ctx = u.ctx;
          const y = u.valToPos(value, "y", true);
          ctx.save();
          ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
          ctx.fillStyle = COLORS.reorder;
          ctx.textAlign = "left";
          ctx.textBaseline = "bottom";
          ctx.fillText(text, u.bbox.left + 6 * devicePixelRatio, y - 3 * devicePixelRatio);
          ctx.restore();
        },
      },
    };
  }

  function zeroBasedRange(_u, _min, max) {
    return [0, max > 0 ? max * 1.1 : 1];
  }

  /** An x range around `xs` with half a bucket each side, and at least `minSpan` wide. */
  function padded(xs, half, minSpan) {
    const span = xs[xs.length - 1] - xs[0] + 2 * half;
    const extra = Math.max(0, minSpan - span) / 2;
    return () => [xs[0] - half - extra, xs[xs.length - 1] + half + extra];
  }

  function reorderSeries() {
    return {
      label: "reorder point",
      stroke: COLORS.reorder,
      width: 2,
      dash: [8, 5],
      points: { show: false },
    };
  }

  function drawDemandChart(container, points, reorder, unit) {
    if (!points.length || points.every((p) => !p.quantity)) {
      markEmpty(container, "No demand recorded for this material.");
      return;
    }
    const xs = points.map((p) => epoch(p.period));
    const data = [xs, points.map((p) => p.quantity)];
    const series = [
      {},
      {
        label: `demand (${unit}/week)`,
        stroke: COLORS.demand,
        fill: "rgba(47, 111, 176, 0.55)",
        width: 1,
        paths: uPlot.paths.bars({ size: [0.8, 24] }),
        points: { show: false },
        value: (_u, v) => num(v, 2),
      },
    ];
    const plugins = [];
    if (reorder) {
      data.push(xs.map(() => reorder.perBucket));
      series.push(reorderSeries());
      plugins.push(labelLinePlugin(2, "reorder point"));
    }
    fill(container);
    const chart = new uPlot(
      {
        width: chartWidth(container),
        height: 260,
        tzDate: utc,
        series,
        plugins,
        scales: { x: { range: padded(xs, 3.5 * 86400, 12 * 7 * 86400) }, y: { range: zeroBasedRange } },
        axes: [{}, { label: `${unit} per week`, size: 60 }],
        legend: { live: true },
      },
      data,
      container,
    );
    charts.push(chart);
    markRendered(container, points.length, { reorderLine: Boolean(reorder) });
  }

  function drawFanChart(container, chosen, reorder, unit, bucket) {
    // The demand chart above shows the whole history; here the recent part gives context.
    const history = (chosen.history || []).slice(-FAN_HISTORY[bucket] || 0);
    const points = chosen.points || [];
    if (!points.length) {
      markEmpty(container, "This series has no forecast points.");
      return;
    }
    const xs = [...history.map((p) => epoch(p.period)), ...points.map((p) => epoch(p.period))];
    const pad = (values) => [...history.map(() => null), ...values];
    const actual = [...history.map((p) => p.quantity), ...points.map((p) => p.actual)];
    const data = [
      xs,
      actual,
      pad(points.map((p) => p.p90)),
      pad(points.map((p) => p.p10)),
      pad(points.map((p) => p.p50)),
      pad(points.map((p) => p.mean)),
    ];
    const fmt = (_u, v) => (v === null || v === undefined ? "–" : num(v, 2));
    const per = bucket === "month" ? "month" : bucket === "day" ? "day" : "week";
    const series = [
      {},
      {
        label: `actual demand (${unit}/${per})`,
        stroke: COLORS.actual,
        width: 1.5,
        points: { show: true, size: 4 },
        value: fmt,
      },
      { label: "p90", stroke: COLORS.bandEdge, width: 1, points: { show: false }, value: fmt },
      { label: "p10", stroke: COLORS.bandEdge, width: 1, points: { show: false }, value: fmt },
      {
        label: "forecast median (p50)",
        stroke: COLORS.median,
        width: 2.5,
        points: { show: true, size: 5 },
        value: fmt,
      },
      {
        label: "forecast mean",
        stroke: COLORS.median,
        width: 1,
        dash: [2, 3],
        points: { show: false },
        value: fmt,
      },
    ];
    const plugins = [];
    if (reorder) {
      data.push(xs.map(() => reorder.perBucket));
      series.push(reorderSeries());
      plugins.push(labelLinePlugin(6, "reorder point"));
    }
    fill(container);
    const chart = new uPlot(
      {
        width: chartWidth(container),
        height: 320,
        tzDate: utc,
        series,
        bands: [{ series: [2, 3], fill: COLORS.band }],
        plugins,
        scales: { y: { range: zeroBasedRange } },
        axes: [{}, { label: `${unit} per ${per}`, size: 60 }],
        legend: { live: true },
      },
      data,
      container,
    );
    charts.push(chart);
    markRendered(container, xs.length, {
      forecastPoints: points.length,
      historyPoints: history.length,
      reorderLine: Boolean(reorder),
      ...(reorder ? { reorderPerBucket: reorder.perBucket } : {}),
    });
  }

  /** Horizontal bars, one panel per metric, drawn as SVG. */
  function drawAccuracyChart(container, groups) {
    if (!groups.length) {
      markEmpty(container, "No backtest results yet.");
      return;
    }
    const panels = [
      { key: "mase", title: "MASE (lower is better)", ref: 1, refLabel: "naive = 1", fmt: (v) => num(v, 2) },
      { key: "wql", title: "WQL, pooled (lower is better)", ref: 1, refLabel: "zero forecast = 1", fmt: (v) => num(v, 2) },
    ];
    const W = 460;
    const labelW = 110;
    const barH = 18;
    const gap = 8;
    const panelH = 28 + groups.length * (barH + gap) + 18;
    const { svg, el } = svgCanvas(W, panels.length * panelH, "Forecast accuracy by demand class");
    let bars = 0;
    panels.forEach((panel, i) => {
      const top = i * panelH;
      const values = groups.map((g) => g[panel.key]).filter((v) => v !== null && v !== undefined);
      const max = Math.max(panel.ref * 1.25, ...values) || 1;
      const x = (v) => labelW + (v / max) * (W - labelW - 60);
      el("text", { x: 0, y: top + 16, class: "svg-title" }, panel.title);
      groups.forEach((g, j) => {
        const y = top + 28 + j * (barH + gap);
        const v = g[panel.key];
        el("text", { x: labelW - 8, y: y + barH - 5, "text-anchor": "end", class: "svg-label" }, g.group || "(none)");
        if (v === null || v === undefined) return;
        el("rect", { x: labelW, y, width: Math.max(1, x(v) - labelW), height: barH, class: `bar bar-${panel.key}` });
        el("text", { x: x(v) + 4, y: y + barH - 5, class: "svg-value" }, panel.fmt(v));
        bars += 1;
      });
      const bottom = top + 28 + groups.length * (barH + gap);
      el("line", { x1: x(panel.ref), x2: x(panel.ref), y1: top + 22, y2: bottom, class: "ref" });
      el("text", { x: x(panel.ref), y: bottom + 12, "text-anchor": "middle", class: "svg-ref" }, panel.refLabel);
    });
    fill(container, svg);
    markRendered(container, bars);
  }

  /** An empty SVG of this size and label, and `el(tag, attrs, text)` appending to it. */
  function svgCanvas(width, height, label) {
    const svgNS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const el = (tag, attrs, text) => {
      const node = document.createElementNS(svgNS, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text !== undefined) node.textContent = text;
      svg.append(node);
      return node;
    };
    return { svg, el };
  }

  /** τ against the shares of actuals below and at or below each served quantile: a level
   * is calibrated when its vertical span (share below … share at or below) reaches the
   * diagonal, give or take the tolerance (the shaded band). */
  function drawCalibrationChart(container, calibration, tolerance) {
    if (!calibration.length) {
      markEmpty(container, "Calibration n/a: this forecast run did not record it.");
      return;
    }
    const W = 460;
    const H = 320;
    const m = { left: 44, right: 14, top: 24, bottom: 40 };
    const x = (v) => m.left + v * (W - m.left - m.right);
    const y = (v) => H - m.bottom - v * (H - m.top - m.bottom);
    const { svg, el } = svgCanvas(W, H, "Calibration: quantile level against the shares of actuals below it");
    el("text", { x: 0, y: 14, class: "svg-title" }, "Share of actuals below q (span: < q … ≤ q) against τ");
    const band = [[0, tolerance], [1 - tolerance, 1], [1, 1], [1, 1 - tolerance], [tolerance, 0], [0, 0]]
      .map(([a, b]) => `${x(a)},${y(b)}`).join(" ");
    el("polygon", { points: band, class: "cal-band" });
    el("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "cal-diagonal" });
    for (const v of [0, 0.5, 1]) {
      el("line", { x1: x(v), y1: y(0), x2: x(v), y2: y(0) + 4, class: "cal-axis" });
      el("text", { x: x(v), y: y(0) + 16, "text-anchor": "middle", class: "svg-value" }, num(v, 1));
      el("line", { x1: x(0) - 4, y1: y(v), x2: x(0), y2: y(v), class: "cal-axis" });
      el("text", { x: x(0) - 7, y: y(v) + 4, "text-anchor": "end", class: "svg-value" }, pct(v));
    }
    el("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(0), class: "cal-axis" });
    el("line", { x1: x(0), y1: y(0), x2: x(0), y2: y(1), class: "cal-axis" });
    el("text", { x: x(0.5), y: H - 6, "text-anchor": "middle", class: "svg-label" }, "quantile level τ");
    let spans = 0;
    for (const c of calibration) {
      if (c.share_below === null || c.share_at_or_below === null) continue;
      const top = y(c.share_at_or_below);
      const bottom = y(c.share_below);
      const span = el("line", {
        x1: x(c.tau), x2: x(c.tau), y1: bottom, y2: Math.min(top, bottom - 2),
        class: `cal-span ${c.calibrated ? "ok" : "off"}`, "data-level": c.level,
      });
      const title = document.createElementNS(svg.namespaceURI, "title");
      title.textContent = `${c.level} (τ = ${num(c.tau, 2)}): below ${pct(c.share_below)}, ` +
        `at or below ${pct(c.share_at_or_below)}, ${c.calibrated ? "calibrated" : "not calibrated"}`;
      span.append(title);
      spans += 1;
    }
    fill(container, svg);
    markRendered(container, spans);
  }

  function calibrationTable(calibration) {
    return table([["level"], ["τ", "num"], ["share below q", "num"], ["share at or below q", "num"],
      ["calibrated"]], calibration.map((c) =>
      h("tr", { "data-level": c.level },
        h("td", {}, c.level === "p_service" ? "p_service (service level)" : c.level),
        h("td", { class: "num" }, num(c.tau, 2)),
        h("td", { class: "num" }, pct1(c.share_below)),
        h("td", { class: "num" }, pct1(c.share_at_or_below)),
        h("td", {}, c.calibrated === null ? "–"
          : h("span", { class: c.calibrated ? "yes" : "no" }, c.calibrated ? "yes" : "no")))));
  }

  function calibratedCount(group) {
    if (!group.calibration || !group.calibration.length) return "n/a";
    const ok = group.calibration.filter((c) => c.calibrated).length;
    return `${ok} of ${group.calibration.length}`;
  }

  // --- overview --------------------------------------------------------------------------

  function stat(label, value, note, cls = "") {
    return h("div", { class: `stat ${cls}` }, h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-value" }, value), h("div", { class: "stat-note" }, note || ""));
  }

  async function loadPipeline() {
    const [status, datasets, ingestions] = await Promise.allSettled([
      api("/api/v1/status"),
      api("/api/v1/datasets"),
      api("/api/v1/ingestions?limit=10"),
    ]);
    const stats = [];
    if (status.status === "fulfilled") {
      const s = status.value;
      const run = s.last_forecast_run;
      stats.push(stat("Gold build", short(s.build_id), s.last_build_at
        ? `built ${ageOf(s.last_build_at)} (${dateTime(s.last_build_at)})` : "no build yet"));
      stats.push(run
        ? stat("Last forecast run", ageOf(run.finished_at),
          `${dateTime(run.finished_at)} · run ${short(run.run_id)} · ${num(run.series, 0)} series` +
          ` · ${num(run.items_with_policy, 0)} items with policy` +
          (run.duration_seconds !== null ? ` · took ${num(run.duration_seconds, 1)} s` : "") +
          (run.gold_build_id ? ` · read gold build ${short(run.gold_build_id)}` : ""))
        : stat("Last forecast run", "none", "run `nova forecast` to produce forecasts", "warn"));
      renderRunFigures(run);
      if (s.storage_error) stats.push(stat("Storage", "error", s.storage_error, "bad"));
    } else {
      stats.push(stat("Status", "unavailable", shortText(status.reason), "bad"));
      fill($("forecast-run"));
    }
    if (ingestions.status === "fulfilled") {
      const g = ingestions.value;
      const q = g.quarantine_count;
      stats.push(stat("Quarantine", q === null ? "n/a" : num(q, 0),
        q === null ? "folder not visible from the API host" : q ? "files rejected, see below" : "no rejected files",
        q ? "warn" : ""));
      stats.push(g.events_error
        ? stat("Event stream", "stopped", g.events_error, "bad")
        : stat("Event stream", g.events_connected ? "connected" : "not connected",
          g.events_connected ? "new files and gold versions show up live" : "versions are checked periodically",
          g.events_connected ? "" : "muted-stat"));
    }
    fill($("status-stats"), stats);

    if (datasets.status === "fulfilled") renderDatasets(datasets.value);
    else fill($("datasets"), message(shortText(datasets.reason), "error"));
    if (ingestions.status === "fulfilled") renderIngestions(ingestions.value);
    else fill($("ingestions"), message(shortText(ingestions.reason), "error"));
    const failed = [status, datasets, ingestions].find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  const STAGES = ["read", "backtest", "select", "final_fit", "policy", "commit"];

  /** The last forecast run's operator figures, one small table each; a figure the run did
   * not record (runs before these were kept) says so. */
  function renderRunFigures(run) {
    if (!run) {
      fill($("forecast-run"));
      return;
    }
    const block = (title, id, rows, headers, missing) => h("div", { id },
      h("h3", {}, title),
      rows === null ? message(missing || "Not recorded by this run.", "muted small")
        : rows.length ? table(headers, rows) : message("none", "muted small"));
    const pairs = (object, order) => {
      if (object === null || object === undefined) return null;
      const keys = Object.keys(object);
      keys.sort(order || ((a, b) => object[b] - object[a] || a.localeCompare(b)));
      return keys.map((k) => [k, object[k]]);
    };
    const stageOrder = (a, b) => {
      const rank = (k) => (STAGES.includes(k) ? STAGES.indexOf(k) : STAGES.length);
      return rank(a) - rank(b) || a.localeCompare(b);
    };
    const stages = pairs(run.stage_seconds, stageOrder);
    const total = stages ? stages.reduce((sum, [, v]) => sum + v, 0) : 0;
    const countRows = (entries, total_) => entries && entries.map(([k, v]) => h("tr", { "data-key": k },
      h("td", {}, k), h("td", { class: "num" }, num(v, 0)),
      h("td", { class: "num" }, total_ ? pct(v / total_) : "–")));
    const series = run.series || 0;
    fill($("forecast-run"),
      block("Stage wall times", "run-stages", stages && stages.map(([k, v]) => h("tr", { "data-key": k },
        h("td", {}, k.replace("_", " ")), h("td", { class: "num" }, `${num(v, 1)} s`),
        h("td", { class: "num" }, total ? pct(v / total) : "–"))), [["stage"], ["wall time", "num"], ["share", "num"]]),
      block("Series by demand class", "run-classes", countRows(pairs(run.series_by_class), series),
        [["class"], ["series", "num"], ["share", "num"]]),
      block("Chosen models", "run-models", countRows(pairs(run.selected_models), series),
        [["model"], ["series", "num"], ["share", "num"]]),
      block("Failed fits by model", "run-failures", pairs(run.failures_by_model) &&
        pairs(run.failures_by_model).map(([k, v]) => h("tr", { "data-key": k },
          h("td", {}, k), h("td", { class: "num" }, num(v, 0)))), [["model"], ["series", "num"]]));
  }

  function renderDatasets(catalog) {
    const rows = catalog.datasets.map((d) => {
      // age from committed_at here: the API caches the catalog, so its age_seconds can lag
      const seconds = d.committed_at
        ? (Date.now() - new Date(d.committed_at).getTime()) / 1000
        : d.age_seconds;
      const days = (seconds || 0) / 86400;
      const freshness = seconds === null ? "" : days > 7 ? "stale" : days > 1 ? "aging" : "fresh";
      return h("tr", { "data-table": d.table, "data-version": d.version },
        h("td", {}, d.table.replace(/^gold\./, "")),
        h("td", { class: "num" }, `v${d.version}`),
        h("td", { class: "num" }, num(d.row_count, 0)),
        h("td", { title: dateTime(d.committed_at) }, h("span", { class: `dot ${freshness}` }), age(seconds)));
    });
    fill($("datasets"), rows.length
      ? table([["table"], ["version", "num"], ["rows", "num"], ["committed"]], rows)
      : message("No gold table yet: drop an export into the inbox."));
  }

  function renderIngestions(g) {
    const parts = [];
    if (g.recent.length) {
      parts.push(table([["when"], ["file"], ["dataset"], ["result"]], g.recent.map((r) =>
        h("tr", {},
          h("td", { title: dateTime(r.occurred_at) }, ageOf(r.occurred_at)),
          h("td", { class: "wrap" }, r.source_name),
          h("td", {}, r.dataset),
          h("td", {}, r.outcome === "ingested"
            ? h("span", { class: "badge ok" }, `${num(r.row_count, 0)} rows`)
            : h("span", { class: "badge critical", title: r.reason || "" },
              `rejected${r.column ? ` (${r.column})` : ""}`))))));
    } else {
      parts.push(message(g.events_connected
        ? "No file ingested since the API started."
        : "The API is not following the event stream, so recent files are not known here."));
    }
    if (g.quarantine.length) {
      parts.push(h("h4", {}, "Quarantined files"));
      parts.push(table([["file"], ["dataset"], ["reason"]], g.quarantine.slice(0, 5).map((f) =>
        h("tr", {}, h("td", { class: "wrap" }, f.name), h("td", {}, f.dataset || "–"),
          h("td", { class: "wrap" }, f.reason || "–")))));
    }
    fill($("ingestions"), parts);
  }

  async function loadAlerts() {
    const page = await api("/api/v1/inventory/alerts?limit=50");
    $("alerts-total").textContent = page.total ? `${page.total} material(s)` : "";
    if (!page.alerts.length) {
      fill($("alerts"), message(page.version === null
        ? "No inventory policy yet: run a forecast first."
        : "No material is at or below its reorder point."));
      return;
    }
    const rows = page.alerts.map((a) => {
      const href = `#/item/${encodeURIComponent(a.item_code)}`;
      return h("tr", { class: "clickable", "data-item": a.item_code, onclick: () => { location.hash = href; } },
        h("td", {}, h("a", { href }, a.item_code)),
        h("td", { class: "wrap" }, a.item_description || "–"),
        h("td", {}, badge(a.alert_level)),
        h("td", { class: "num" }, num(a.on_hand, 1)),
        h("td", { class: "num" }, num(a.reorder_point, 1)),
        h("td", { class: "num" }, num(a.safety_stock, 1)),
        h("td", { class: "num" }, num(a.days_of_cover, 0)),
        h("td", { class: "num" }, num(a.lead_time_mean_days, 1)),
        h("td", {}, a.snapshot_date || "–"));
    });
    fill($("alerts"), table([["code"], ["description"], ["level"], ["on hand", "num"],
      ["reorder point", "num"], ["safety stock", "num"], ["days of cover", "num"],
      ["lead time (d)", "num"], ["stock as of"]], rows));
  }

  async function loadAccuracy() {
    const result = await api("/api/v1/kpis/forecast-accuracy?by=demand_class");
    drawAccuracyChart($("accuracy-chart"), result.groups);
    const overall = result.overall;
    drawCalibrationChart($("calibration-chart"), overall ? overall.calibration : [], result.tolerance);
    if (!result.groups.length) {
      fill($("accuracy"), message("No backtest results yet: run a forecast first."));
      fill($("calibration"), message("No backtest results yet."));
      return;
    }
    const row = (g, label) => h("tr", { class: label ? "total" : "" },
      h("td", {}, label || g.group || "(none)"), h("td", { class: "num" }, num(g.series, 0)),
      h("td", { class: "num" }, num(g.mase, 2)), h("td", { class: "num" }, g.wql === null ? "n/a" : num(g.wql, 3)),
      h("td", { class: "num" }, pct(g.wape)), h("td", { class: "num" }, num(g.bias, 2)),
      h("td", { class: "num", title: "served levels (p10…p90, service level) calibrated within 3 points" },
        calibratedCount(g)));
    fill($("accuracy"),
      table([["class"], ["series", "num"], ["MASE", "num"], ["WQL", "num"], ["WAPE", "num"], ["bias", "num"],
        ["calibrated levels", "num"]], [...result.groups.map((g) => row(g)), ...(overall ? [row(overall, "all series")] : [])]),
      result.note ? message(result.note, "muted small") : null);
    fill($("calibration"), overall && overall.calibration.length
      ? calibrationTable(overall.calibration)
      : message(result.note || "Calibration n/a for this run.", "muted small"));
  }

  function showHome() {
    $("view-home").hidden = false;
    document.title = "Nova Corrente · spare-parts planning";
    return [
      section(null, loadPipeline),
      section($("alerts"), loadAlerts),
      section($("accuracy"), loadAccuracy).catch((error) => {
        markEmpty($("accuracy-chart"), "Accuracy unavailable.");
        markEmpty($("calibration-chart"), "Calibration unavailable.");
        throw error;
      }),
    ];
  }

  // --- one material ----------------------------------------------------------------------

  function facts(container, pairs) {
    fill(container, pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  }

  /** The reorder point (units over the lead time) as a rate per chart bucket, or null. */
  function reorderRate(policy, bucket) {
    if (!policy || policy.reorder_point === null || policy.reorder_point === undefined) return null;
    let leadDays = policy.lead_time_mean_days;
    if (!(leadDays > 0) && policy.mean_daily_demand > 0 && policy.mean_lead_time_demand > 0) {
      leadDays = policy.mean_lead_time_demand / policy.mean_daily_demand;
    }
    if (!(leadDays > 0)) return null;
    const days = BUCKET_DAYS[bucket] || 7;
    return { perBucket: (policy.reorder_point / leadDays) * days, leadDays, days };
  }

  /** What the reorder point promises, at the run's service level (README, "Inventory policy"). */
  function reorderPromise(policy) {
    const level = `${num(policy.service_level * 100, 1)} %`;
    return `Reorder point (${level}): order when stock on hand plus on order falls to this level; ` +
      `in ${level} of replenishment cycles the order arrives before the shelf runs out, given this ` +
      "part's demand history and lead times.";
  }

  function reorderCaption(policy, reorder, unit, per, drawn) {
    if (!policy) return "No reorder point: the latest forecast run has no inventory policy for this material.";
    const promise = `${reorderPromise(policy)} Here: ${num(policy.reorder_point, 1)} ${unit} ` +
      `(safety stock ${num(policy.safety_stock, 1)} ${unit}).`;
    if (!reorder) return `${promise} The line cannot be drawn: the lead time of this material is unknown.`;
    const base = `${promise} The mean lead time is ${num(reorder.leadDays, 1)} days.`;
    if (!drawn) return `${base} It applies to the material as a whole, so it is drawn on the all-sites series only.`;
    return `${base} To compare it with demand per ${per}, the dashed line shows it as a rate: ` +
      `${num(policy.reorder_point, 1)} ÷ ${num(reorder.leadDays, 1)} days × ${num(reorder.days, 1)} = ` +
      `${num(reorder.perBucket, 2)} ${unit} per ${per}. Demand running above the line for a whole lead ` +
      `time would use up the reorder point before a replenishment arrives.`;
  }

  async function loadItemFacts(code) {
    const item = await api(`/api/v1/items/${encodeURIComponent(code)}`);
    $("item-title").textContent = `${item.item_code} · ${item.item_description || "(no description)"}`;
    document.title = `${item.item_code} · Nova Corrente`;
    facts($("item-facts"), [
      ["Family", item.item_family || "–"],
      ["Unit", item.unit || "–"],
      ["Demand class", item.demand_class || "–"],
      ["ADI / CV²", `${num(item.adi, 2)} / ${num(item.cv2, 2)}`],
      ["First / last request", `${item.first_seen || "–"} / ${item.last_seen || "–"}`],
      ["Request lines", num(item.request_lines, 0)],
      ["Total quantity", num(item.total_quantity, 1)],
      ["Sites", item.sites.length ? item.sites.join(", ") : "–"],
    ]);
    return item;
  }

  function evidenceText(method) {
    return {
      demand_history: "from the part's demand history",
      thin_history: "thin history, treat with care",
      forecast_only: "no history: from the forecast only",
      no_demand: "no demand seen",
    }[method] || method;
  }

  async function loadPolicy(code) {
    try {
      const page = await api(`/api/v1/inventory/policy?item=${encodeURIComponent(code)}`);
      const p = page.policies[0] || null;
      if (!p) throw new ApiError(404, "No policy", "");
      facts($("item-policy"), [
        ["Alert level", badge(p.alert_level)],
        ["Reorder point", h("span", { title: reorderPromise(p) }, num(p.reorder_point, 1))],
        ["Safety stock", num(p.safety_stock, 1)],
        ["Classic reorder point", num(p.classic_reorder_point, 1)],
        ["Service level", pct(p.service_level)],
        ["On hand", `${num(p.on_hand, 1)}${p.snapshot_date ? ` (as of ${p.snapshot_date})` : ""}`],
        ["Days of cover", num(p.days_of_cover, 0)],
        ["Lead time", `${num(p.lead_time_mean_days, 1)} ± ${num(p.lead_time_std_days, 1)} days` +
          ` (${p.lead_time_source || "?"}, ${num(p.lead_time_samples, 0)} samples)`],
        ["Mean demand", `${num(p.mean_daily_demand, 2)} per day`],
        ...(p.method ? [
          ["Promised service", `${pct(p.expected_service_level)} of replenishment cycles`],
          ["Order", `${num(p.order_quantity, 1)} (up to ${num(p.order_up_to, 1)})`],
          ["Evidence", `${evidenceText(p.method)}: ${num(p.evidence_periods, 0)} periods, ` +
            `${num(p.evidence_demand_periods, 0)} with demand`],
        ] : []),
      ]);
      return p;
    } catch (error) {
      if (error.status !== 404) {
        fill($("item-policy"), message(shortText(error), "error"));
        throw error;
      }
      fill($("item-policy"), message(error.detail || "No inventory policy for this material.", "empty"));
      return null;
    }
  }

  async function loadItem(code) {
    const enc = encodeURIComponent(code);
    fill($("item-facts"), message("Loading…"));
    fill($("item-policy"), message("Loading…"));
    $("forecast-caption").textContent = "";
    $("demand-caption").textContent = "";
    $("forecast-meta").textContent = "";
    $("series-picker").hidden = true;
    for (const id of ["demand-chart", "forecast-chart"]) markEmpty($(id), "Loading…");

    let item;
    try {
      item = await loadItemFacts(code);
    } catch (error) {
      $("item-title").textContent = `Material ${code}`;
      const text = error.status === 404
        ? `Unknown material (${error.detail || code}). Use the search box above to find one.`
        : shortText(error);
      fill($("item-facts"), message(text, error.status === 404 ? "empty" : "error"));
      fill($("item-policy"));
      for (const id of ["demand-chart", "forecast-chart"]) markEmpty($(id), "No data for this code.");
      if (error.status === 404) return;
      throw error;
    }
    const unit = item.unit || "units";
    const [policy, demand, forecast] = await Promise.allSettled([
      loadPolicy(code),
      api(`/api/v1/demand?item=${enc}&grain=week`),
      api(`/api/v1/forecasts?item=${enc}&site=*`),
    ]);
    const p = policy.status === "fulfilled" ? policy.value : null;
    const failures = [];

    if (demand.status === "fulfilled") {
      const weekly = reorderRate(p, "week");
      drawDemandChart($("demand-chart"), demand.value.points, weekly, unit);
      $("demand-caption").textContent = p && weekly ? `${reorderPromise(p)} The dashed line shows it ` +
        `per week: ${num(weekly.perBucket, 2)} ${unit}.` : "";
    } else {
      markEmpty($("demand-chart"), shortText(demand.reason));
      failures.push(demand.reason);
    }

    if (forecast.status === "fulfilled") {
      showForecast(forecast.value, p, unit);
    } else if (forecast.reason.status === 404) {
      markEmpty($("forecast-chart"), forecast.reason.detail || "No forecast for this material.");
      $("forecast-caption").textContent = "Forecast runs cover every material with demand history; older runs left out materials with little history.";
    } else {
      markEmpty($("forecast-chart"), shortText(forecast.reason));
      failures.push(forecast.reason);
    }
    if (policy.status === "rejected") failures.push(policy.reason);
    if (failures.length) throw failures[0];
  }

  function showForecast(result, policy, unit) {
    const bucket = result.bucket || "week";
    const per = bucket === "month" ? "month" : bucket === "day" ? "day" : "week";
    const series = result.series;
    if (!series.length) {
      markEmpty($("forecast-chart"), "The forecast run has no series for this material.");
      return;
    }
    $("forecast-meta").textContent =
      `(run ${short(result.run_id)}, per ${per}: shaded band p10–p90, solid line p50, dotted line mean)`;
    const select = $("series-select");
    fill(select, series.map((s, i) => h("option", { value: i },
      `${s.site_code ? `site ${s.site_code}` : "all sites"} · model ${s.model}`)));
    const first = Math.max(0, series.findIndex((s) => !s.site_code));
    select.value = String(first);
    $("series-picker").hidden = series.length < 2;
    const reorder = reorderRate(policy, bucket);
    const draw = () => {
      const chosen = series[Number(select.value)];
      const drawn = chosen.site_code ? null : reorder;
      const container = $("forecast-chart");
      const old = charts.findIndex((c) => c.root.parentElement === container);
      if (old >= 0) charts.splice(old, 1)[0].destroy();
      drawFanChart(container, chosen, drawn, unit, bucket);
      $("forecast-caption").textContent = reorderCaption(policy, reorder, unit, per, Boolean(drawn));
    };
    select.onchange = draw;
    draw();
  }

  function showItem(code) {
    $("view-item").hidden = false;
    return [loadItem(code)];
  }

  // --- search ----------------------------------------------------------------------------

  let searchTimer = null;
  let searchSeq = 0;
  const input = $("item-search");
  const results = $("search-results");

  function go(code) {
    results.hidden = true;
    input.value = "";
    location.hash = `#/item/${encodeURIComponent(code)}`;
  }

  async function search(q) {
    const seq = ++searchSeq;
    let page;
    try {
      page = await api(`/api/v1/items?q=${encodeURIComponent(q)}&limit=20`);
    } catch (error) {
      if (seq !== searchSeq) return;
      fill(results, h("li", { class: "error" }, shortText(error)));
      results.hidden = false;
      return;
    }
    if (seq !== searchSeq) return;
    fill(results, page.items.length
      ? page.items.map((it) => h("li", {},
        h("a", { href: `#/item/${encodeURIComponent(it.item_code)}`, onclick: () => { results.hidden = true; } },
          h("strong", {}, it.item_code), ` ${it.item_description || ""}`,
          h("span", { class: "muted small" }, ` ${it.demand_class || ""}`))))
      : h("li", { class: "muted" }, "No material matches."));
    results.hidden = false;
  }

  input.addEventListener("input", () => {
    clearTimeout(searchTimer);
    const q = input.value.trim();
    if (!q) {
      results.hidden = true;
      return;
    }
    searchTimer = setTimeout(() => search(q), 200);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") results.hidden = true;
    if (event.key === "Enter") {
      const first = results.querySelector("a");
      if (first && !results.hidden) go(decodeURIComponent(first.getAttribute("href").slice(7)));
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".search")) results.hidden = true;
  });

  // --- routing ---------------------------------------------------------------------------

  async function route() {
    const token = ++routeToken;
    const body = document.body;
    body.dataset.ready = "false";
    delete body.dataset.error;
    $("banner").hidden = true;
    destroyCharts();
    for (const view of document.querySelectorAll(".view")) view.hidden = true;
    window.scrollTo(0, 0);

    const match = location.hash.match(/^#\/item\/(.+)$/);
    const loads = match ? showItem(decodeURIComponent(match[1])) : showHome();
    const outcomes = await Promise.allSettled(loads);
    if (token !== routeToken) return; // the user moved on meanwhile
    const errors = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason);
    if (errors.length) {
      const failed = [...new Set(errors.map((e) => e.message))];
      body.dataset.error = failed.join("; ");
      $("banner").textContent = errors.some((e) => e.status === 401)
        ? "This API needs a key: enter it above to load the dashboard."
        : `Some data could not be loaded: ${failed.join("; ")}`;
      $("banner").hidden = false;
    }
    body.dataset.ready = "true";
  }

  window.addEventListener("hashchange", route);
  if (typeof uPlot === "undefined") {
    document.body.dataset.error = "chart library failed to load";
  }
  route();
})();
