/* The console's shared code: sign-in, the key on every request, error banners, number formats
   and the equity chart (uPlot). The key lives in sessionStorage only: this tab, until it closes. */
(function () {
  "use strict";
  const KEY = "tradegraph.apiKey";
  const NAME = "tradegraph.userName";
  const NOTICE = "tradegraph.signInNotice";
  const tg = (window.tg = {});

  tg.key = () => sessionStorage.getItem(KEY);

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }
  tg.ApiError = ApiError;

  /** fetch() a JSON route of the API with the key; throws ApiError with the route's `detail`. */
  tg.api = async function (path, options = {}) {
    const headers = { "x-api-key": tg.key() || "", ...(options.headers || {}) };
    if (options.body) headers["content-type"] = "application/json";
    const res = await fetch(path, { ...options, headers });
    if (res.status === 401) {
      tg.signOut("Your API key was not accepted (invalid API key). Sign in again.");
      throw new ApiError(401, "invalid API key");
    }
    const body = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, (body && body.detail) || res.statusText);
    return body;
  };

  // ---- SSE over fetch(): EventSource cannot send x-api-key ----
  /** Parse a text/event-stream body into {event, data, id} messages. */
  tg.sseEvents = async function* (body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = { event: "", data: [], id: "" };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        let text = buffer + value;
        const hold = text.endsWith("\r") ? "\r" : ""; // may be the first half of \r\n
        if (hold) text = text.slice(0, -1);
        const lines = text.split(/\r\n|\r|\n/);
        buffer = lines.pop() + hold;
        for (const line of lines) {
          if (line === "") {
            if (message.data.length) yield { event: message.event || "message", data: message.data.join("\n"), id: message.id };
            message = { event: "", data: [], id: "" };
            continue;
          }
          if (line.startsWith(":")) continue; // keep-alive comment
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") message.event = val;
          else if (field === "data") message.data.push(val);
          else if (field === "id") message.id = val;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  };

  // ---- formats (two decimals everywhere money or percentages show) ----
  const moneyFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  tg.money = (v) => (v === null || v === undefined || v === "" ? "" : moneyFormat.format(Number(v)));
  tg.percent = (fraction) => (fraction === null || fraction === undefined ? "n/a" : `${(Number(fraction) * 100).toFixed(2)} %`);
  const marketParts = new Intl.DateTimeFormat("en-CA", {
    timeZone: "America/New_York", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  /** An ISO time as New York wall time: "2012-01-03 16:00" (or the date alone). */
  tg.marketTime = function (iso, dateOnly = false) {
    if (!iso) return "";
    const text = String(iso);
    if (!/(Z|[+-]\d\d:?\d\d)$/i.test(text)) {
      // no offset: already New York wall time (the session clock is written that way)
      return dateOnly ? text.slice(0, 10) : text.slice(0, 16).replace("T", " ");
    }
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return String(iso);
    const p = Object.fromEntries(marketParts.formatToParts(date).map((x) => [x.type, x.value]));
    const day = `${p.year}-${p.month}-${p.day}`;
    return dateOnly ? day : `${day} ${p.hour}:${p.minute}`;
  };

  // ---- banners and sign-in ----
  const $ = (id) => document.getElementById(id);
  tg.banner = function (message) {
    const banner = $("banner");
    banner.textContent = message || "";
    banner.hidden = !message;
  };

  function showSignIn(message) {
    $("content").hidden = true;
    $("who").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-message").textContent = message || "";
    $("api-key").focus();
  }

  function signedIn() {
    $("sign-in").hidden = true;
    $("who").hidden = false;
    $("who-name").textContent = sessionStorage.getItem(NAME) || "";
    $("content").hidden = false;
    for (const el of document.querySelectorAll("[data-src]")) {
      htmx.ajax("GET", el.dataset.src, { target: el, swap: "outerHTML" });
    }
    document.dispatchEvent(new CustomEvent("console:ready"));
  }

  /** Forget the key and start over: the reload drops every piece of data the page was showing. */
  tg.signOut = function (message) {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NAME);
    sessionStorage.setItem(NOTICE, message || "You are signed out.");
    document.dispatchEvent(new CustomEvent("console:signed-out"));
    window.location.reload();
  };

  async function signIn(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    const message = $("sign-in-message");
    message.textContent = "Checking the key…";
    let res;
    try {
      res = await fetch("/console/whoami", { headers: { "x-api-key": key } });
    } catch (err) {
      message.textContent = "The server cannot be reached. Try again in a moment.";
      return;
    }
    if (res.status === 401) {
      const body = await res.json().catch(() => ({}));
      message.textContent = `That API key was not accepted (${body.detail || "invalid API key"}). ` +
        "Check that you pasted the whole key printed by “tradegraph users create NAME”.";
      $("api-key").select();
      return;
    }
    if (!res.ok) {
      message.textContent = `The server could not check the key (HTTP ${res.status}).`;
      return;
    }
    const user = await res.json();
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(NAME, user.name);
    $("api-key").value = "";
    message.textContent = "";
    signedIn();
  }

  // ---- htmx: the key on every request, errors as banners, charts after swaps ----
  document.addEventListener("htmx:configRequest", (e) => {
    const key = tg.key();
    if (key) e.detail.headers["x-api-key"] = key;
  });
  document.addEventListener("htmx:responseError", (e) => {
    const xhr = e.detail.xhr;
    if (xhr.status === 401) return tg.signOut("Your API key was not accepted (invalid API key). Sign in again.");
    let detail = xhr.statusText;
    try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (err) { /* not JSON */ }
    tg.banner(`The server answered ${xhr.status}: ${detail}`);
    const target = e.detail.target;
    if (target && target.dataset && target.dataset.src) {
      target.removeAttribute("aria-busy");
      target.textContent = `Could not load this page: ${detail}`;
    }
  });
  document.addEventListener("htmx:sendError", () => tg.banner("The server cannot be reached. Try again in a moment."));
  document.addEventListener("htmx:beforeRequest", () => tg.banner(""));
  document.addEventListener("htmx:afterSettle", () => {
    for (const el of document.querySelectorAll("[data-chart]:not([data-drawn])")) drawStaticChart(el);
  });

  // ---- equity chart: strategy against buy and hold, one point per bar, dates on the x axis ----
  const SERIES_STYLE = [
    { stroke: "#1d4ed8", width: 2 },
    { stroke: "#b45309", width: 2, dash: [6, 4] },
  ];
  const X_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  /** A chart value: a number, or null for a gap. */
  const point = (v) => (v === null || v === undefined ? null : Number(v));

  /** A uPlot chart that can grow: x is the bar number, labelled with the bar's date. */
  class EquityChart {
    constructor(el, labels, styles = SERIES_STYLE) {
      this.el = el;
      this.times = [];
      this.columns = labels.map(() => []);
      this.labels = labels;
      this.styles = styles;
      this.plot = null;
      this.pending = false;
    }

    /** Replace every point (a series shorter than `times` is padded with gaps). */
    replace(times, columns) {
      this.times.splice(0, this.times.length, ...times); // in place: the axis and legend read this array
      this.columns = columns.map((values) => times.map((_, i) => point(values[i])));
      this.schedule();
    }

    push(time, values) {
      this.times.push(time);
      values.forEach((v, i) => this.columns[i].push(point(v)));
      this.schedule();
    }

    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }

    draw() {
      const xs = this.times.map((_, i) => i);
      const data = [xs, ...this.columns];
      this.el.dataset.points = String(this.times.length);
      if (this.plot) {
        this.plot.setData(data);
        return this.showLatest();
      }
      if (!this.times.length) return;
      this.el.replaceChildren();
      const times = this.times;
      const dateOf = (i) => (Number.isInteger(i) && times[i] ? tg.marketTime(times[i], true) : "");
      this.plot = new uPlot({
        width: Math.max(this.el.clientWidth, 320),
        height: 280,
        padding: [12, 36, 0, 0],
        scales: { x: { time: false } },
        axes: [
          { values: (u, splits) => splits.map(dateOf), space: 90, incrs: X_STEPS },
          { values: (u, splits) => splits.map((v) => moneyFormat.format(v).replace(/\.00$/, "")), size: 80 },
        ],
        series: [
          { label: "Bar close", value: (u, i) => (i === null ? "" : tg.marketTime(times[i])) },
          ...this.labels.map((label, i) => ({
            label, ...this.styles[i % this.styles.length], value: (u, v) => (v === null ? "" : tg.money(v)),
          })),
        ],
      }, data, this.el);
      this.el.uplot = this.plot;
      this.showLatest();
    }

    /** With the pointer away from the chart, the legend shows the latest bar; the canvas gets a text summary. */
    showLatest() {
      const last = this.times.length - 1;
      const latest = this.labels.map((label, i) => `${label} ${tg.money(this.columns[i][last])}`).join(", ");
      const canvas = this.plot.ctx.canvas;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `Equity chart, ${this.times.length} bars to ${tg.marketTime(this.times[last])}: ${latest}`);
      if (this.plot.cursor.idx === null || this.plot.cursor.idx === undefined) {
        this.plot.setLegend({ idx: this.times.length - 1 });
      }
    }

    resize() {
      if (this.plot) this.plot.setSize({ width: Math.max(this.el.clientWidth, 320), height: 280 });
    }
  }
  tg.EquityChart = EquityChart;
  const charts = new Set();
  tg.chart = function (el, labels, styles) {
    const chart = new EquityChart(el, labels, styles);
    charts.add(chart);
    return chart;
  };
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));

  function drawStaticChart(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const spec = JSON.parse(el.querySelector("script[type='application/json']").textContent);
    const chart = tg.chart(el, spec.series.map((s) => s.label));
    spec.labels.forEach((time, i) => chart.push(time, spec.series.map((s) => s.values[i])));
    chart.draw();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => tg.signOut("You are signed out."));
    const notice = sessionStorage.getItem(NOTICE);
    sessionStorage.removeItem(NOTICE);
    if (tg.key()) signedIn();
    else showSignIn(notice);
  });
})();
