/* The live session page: replays and follows every run of the thread over the API's SSE stream,
   rejoining with Last-Event-ID when the connection drops, and answers approvals.
   The custom events it reads (decision, verdict, fill, equity, order, fee) are defined in
   graph/events.py; any other type is ignored. */
(function () {
  "use strict";
  const root = document.getElementById("live");
  if (!root) return;
  const threadId = root.dataset.threadId;
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 200;
  const STREAM_MODES = ["values", "updates", "custom"];
  const STATUS_TEXT = { busy: "running", interrupted: "waiting for approval", error: "failed", idle: "finished" };

  let stopped = false;
  let controller = null;
  let wake = () => {};
  let chart = null;
  let pending = null;
  const followed = new Set();
  const answered = new Set();

  const sleep = (ms) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => { clearTimeout(timer); resolve(); };
  });

  const sseEvents = tg.sseEvents; // console.js: SSE over fetch(), since EventSource cannot send x-api-key

  /** Follow one run to its `end` or `error`, rejoining after the last event seen if the stream drops. */
  async function followRun(run) {
    const modes = (run.kwargs && run.kwargs.stream_mode) || [];
    const onlyEvents = modes.includes("custom") ? `?stream_mode=${encodeURIComponent(JSON.stringify(["custom", "updates"]))}` : "";
    const url = `/threads/${threadId}/runs/${run.run_id}/stream${onlyEvents}`;
    let last = 0;
    let attempt = 0;
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { "x-api-key": tg.key() || "", accept: "text/event-stream" };
        if (last) headers["Last-Event-ID"] = String(last);
        const res = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
        if (res.status === 401) return tg.signOut("Your API key was not accepted (invalid API key). Sign in again.");
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          throw new tg.ApiError(res.status, body.detail || res.statusText);
        }
        if (attempt) connection(`Rejoined the stream after event ${last}.`);
        for await (const message of sseEvents(res.body)) {
          const id = Number(message.id);
          if (id && id <= last) continue;
          if (id) last = id;
          attempt = 0;
          handle(message, modes);
          if (message.event === "end" || message.event === "error") return;
        }
      } catch (err) {
        if (stopped) return;
        if (err instanceof tg.ApiError) throw err;
      }
      attempt += 1;
      connection(`Connection lost; rejoining after event ${last} (attempt ${attempt})…`);
      await sleep(Math.min(500 * attempt, 5000));
    }
  }

  function handle(message, modes) {
    if (message.event === "metadata" || message.event === "end") return;
    const data = JSON.parse(message.data);
    if (message.event === "custom") return onCustom(data);
    if (message.event === "error") return showError(data);
    if (data && data.__interrupt__ && data.__interrupt__.length) showPending(data.__interrupt__[0]);
    if (message.event === "values" && !modes.includes("custom") && data.clock) {
      // a run started without custom events: show what the state says
      setClock(data.clock, data.bar_index, data.bars_total);
      if (data.portfolio) onEquity({ clock: data.clock, equity: data.portfolio.equity, cash: data.portfolio.cash, benchmark: null });
    }
  }

  // ---- what the events show ----
  function onCustom(event) {
    if (!event || !event.type) return;
    if (event.clock) setClock(event.clock, event.bar_index, event.bars_total);
    if (event.type === "decision") {
      addRow("decisions", [tg.marketTime(event.clock), [event.bar_index + 1, "num"], event.decider,
        [event.status === "ok" ? "ok" : "failed", `badge status-${event.status}`], event.reason]);
    } else if (event.type === "verdict") {
      addRow("verdicts", [tg.marketTime(event.clock), event.symbol, event.side, [event.quantity, "num"],
        [tg.money(event.notional), "num"], [event.status.replace("_", " "), `badge status-${event.status}`],
        event.rule, event.reason]);
    } else if (event.type === "fill") {
      addRow("fills", [tg.marketTime(event.clock), event.symbol, event.side, [event.quantity, "num"],
        [tg.money(event.price), "num"], [tg.money(event.notional), "num"], [tg.money(event.commission), "num"],
        statusBadge(event.status), event.reason || ""]);
    } else if (event.type === "order") {
      addRow("orders", [tg.marketTime(event.clock), [event.order_id, "num"], event.symbol, event.side,
        words(event.order_type), [event.filled_quantity, "num"], statusBadge(event.status), event.reason || ""]);
    } else if (event.type === "fee") {
      addRow("fees", [tg.marketTime(event.clock), event.symbol, [event.quantity, "num"],
        [tg.money(event.price), "num"], [event.days, "num"], [tg.money(event.amount), "num"]]);
    } else if (event.type === "equity") {
      onEquity(event);
    }
  }

  /** `partially_filled` -> `partially filled` (statuses and order types as words). */
  const words = (value) => String(value || "").replaceAll("_", " ");
  const statusBadge = (status) => [words(status), `badge status-${status}`];

  function onEquity(event) {
    $("equity").textContent = tg.money(event.equity);
    $("cash").textContent = tg.money(event.cash);
    $("benchmark").textContent = event.benchmark === null ? "—" : tg.money(event.benchmark);
    if (!chart) chart = tg.chart($("live-chart"), ["strategy equity", "buy and hold"]);
    chart.push(event.clock, [event.equity, event.benchmark]);
  }

  let barsTotal = null;
  function setClock(clock, barIndex, total) {
    $("clock").textContent = tg.marketTime(clock);
    if (total) barsTotal = total;
    if (Number.isInteger(barIndex)) {
      $("progress").textContent = barsTotal ? `${barIndex + 1} of ${barsTotal}` : `${barIndex + 1}`;
    }
  }

  /** Prepend a row (newest first); a cell is text or [text, class]. */
  function addRow(tableId, cells) {
    const body = $(tableId).tBodies[0];
    const row = document.createElement("tr");
    for (const cell of cells) {
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      const td = document.createElement("td");
      if (cls.startsWith("badge")) {
        const badge = document.createElement("span");
        badge.className = cls;
        badge.textContent = text;
        td.append(badge);
      } else {
        td.className = cls;
        td.textContent = text === null || text === undefined ? "" : String(text);
      }
      row.append(td);
    }
    body.prepend(row);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  function setStatus(status) {
    const badge = $("status");
    badge.textContent = STATUS_TEXT[status] || status;
    badge.className = `badge status-${status}`;
  }

  function connection(text) {
    $("connection").textContent = text;
  }

  function showError(error) {
    const detail = error ? `${error.error || "error"}: ${error.message || ""}` : "unknown error";
    problem(`The session failed. ${detail}`);
  }

  function problem(text) {
    const box = $("run-error");
    box.textContent = text;
    box.hidden = false;
  }

  // ---- approvals ----
  const answerKey = (interrupt) => `${interrupt.id}:${interrupt.value && interrupt.value.proposal_id}`;

  function showPending(interrupt) {
    const order = interrupt && interrupt.value;
    if (!order || order.kind !== "order_approval" || answered.has(answerKey(interrupt))) return;
    pending = interrupt;
    $("approval-symbol").textContent = order.symbol;
    $("approval-side").textContent = order.side;
    $("approval-quantity").textContent = order.quantity;
    $("approval-price").textContent = tg.money(order.price);
    $("approval-notional").textContent = tg.money(order.notional);
    $("approval-limit").textContent = order.limit;
    $("approval-clock").textContent = tg.marketTime(order.clock);
    $("approval-reason").textContent = order.reason;
    $("smaller-quantity").max = String(order.quantity);
    $("approval-message").textContent = "";
    setButtons(false);
    const panel = $("approval");
    const appearing = panel.hidden;
    panel.hidden = false;
    setStatus("interrupted");
    if (appearing) $("approve").focus();
  }

  function hidePending() {
    pending = null;
    $("approval").hidden = true;
  }

  function setButtons(disabled) {
    for (const el of $("approval").querySelectorAll("button, input")) el.disabled = disabled;
  }

  async function answer(resume) {
    if (!pending) return;
    const interrupt = pending;
    setButtons(true);
    $("approval-message").textContent = "";
    try {
      await tg.api(`/threads/${threadId}/runs`, {
        method: "POST",
        body: JSON.stringify({ assistant_id: "trading_session", command: { resume }, stream_mode: STREAM_MODES }),
      });
    } catch (err) {
      $("approval-message").textContent = `Not sent: ${err.message}`;
      setButtons(false);
      return;
    }
    answered.add(answerKey(interrupt));
    hidePending();
    setStatus("busy");
    connection(resume.action === "reject" ? "Rejected; the session goes on." : "Approved; the session goes on.");
    wake();
  }

  $("approve").addEventListener("click", () => answer({ action: "approve" }));
  $("reject").addEventListener("click", () => answer({ action: "reject" }));
  $("approve-smaller").addEventListener("submit", (e) => {
    e.preventDefault();
    const quantity = Number($("smaller-quantity").value);
    const most = pending ? Number(pending.value.quantity) : 0;
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > most) {
      $("approval-message").textContent = `Enter a whole number of shares from 1 to ${most}.`;
      return;
    }
    answer({ action: "approve", quantity });
  });

  // ---- the thread: every run in order, then whatever comes next ----
  async function follow() {
    const thread = await tg.api(`/threads/${threadId}`);
    const modelId = thread.metadata && thread.metadata.model_id;
    if (modelId) {
      $("model-link").href = `/console/models/${modelId}`;
      $("model-link").textContent = `← Model ${modelId}`;
    }
    setStatus(thread.status);
    while (!stopped) {
      const runs = (await tg.api(`/threads/${threadId}/runs?limit=1000`)).reverse();
      const fresh = runs.filter((run) => !followed.has(run.run_id));
      for (const run of fresh) {
        setStatus("busy");
        await followRun(run);
        followed.add(run.run_id);
      }
      const now = await tg.api(`/threads/${threadId}`);
      setStatus(now.status);
      if (now.status === "interrupted") {
        const state = await tg.api(`/threads/${threadId}/state`);
        if (state.interrupts && state.interrupts.length) showPending(state.interrupts[0]);
        connection("Paused: the session waits for your decision.");
      } else {
        hidePending();
      }
      if (now.status === "error") return showError(now.error);
      if (now.status === "idle") return connection(runs.length ? "The session has finished." : "The session has not started.");
      await sleep(fresh.length ? 100 : 1500); // a queued run, or an answer given elsewhere
    }
  }

  document.addEventListener("console:ready", () => {
    follow().catch((err) => {
      if (!stopped) problem(`Cannot follow this session: ${err.message}`);
    });
  });
  document.addEventListener("console:signed-out", () => {
    stopped = true;
    if (controller) controller.abort();
    wake();
  });
})();
