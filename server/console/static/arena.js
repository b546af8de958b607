/* Arenas: start one from a form (pick bots, dates, symbols), and follow one live: standings and every
   bot's equity overlaid with buy-and-hold, from GET /arenas/{id}/stream (SSE over fetch, with the key). */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  // ---- the arenas page: the form and the list ----
  async function loadForm() {
    const bots = $("arena-bots");
    const models = await tg.api("/models");
    bots.replaceChildren();
    const legend = document.createElement("legend");
    legend.textContent = "Bots";
    bots.append(legend);
    if (!models.length) bots.append("Create a bot first (tradegraph models create).");
    for (const model of models) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "models";
      box.value = String(model.id);
      label.append(box, ` ${model.name} (${model.signature})`);
      bots.append(label);
    }
    const arenas = await tg.api("/arenas");
    const list = $("arena-list");
    list.replaceChildren();
    if (!arenas.length) list.append(Object.assign(document.createElement("li"), { textContent: "None yet." }));
    for (const arena of arenas) {
      const link = Object.assign(document.createElement("a"), { href: `/console/arenas/${arena.arena_id}` });
      const input = arena.input;
      link.textContent = `${tg.marketTime(arena.created_at)}: ${input.symbols.join(", ")}, ${input.start} to ${input.end}`;
      const item = document.createElement("li");
      item.append(link);
      list.append(item);
    }
  }

  async function startArena(event) {
    event.preventDefault();
    const form = event.target;
    const models = [...form.querySelectorAll("input[name=models]:checked")].map((box) => Number(box.value));
    const input = {
      mode: "daily",
      start: form.start.value,
      end: form.end.value,
      symbols: form.symbols.value.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean),
      decider: form.decider.value,
    };
    $("arena-message").textContent = "";
    try {
      const arena = await tg.api("/arenas", { method: "POST", body: JSON.stringify({ models, input }) });
      window.location.assign(`/console/arenas/${arena.arena_id}`);
    } catch (error) {
      $("arena-message").textContent = error.message;
    }
  }

  // ---- one arena, live ----
  let chart = null;
  const BOT_COLORS = ["#1d4ed8", "#15803d", "#b91c1c", "#7c3aed", "#0e7490", "#c2410c", "#be185d", "#4d7c0f"];
  const MARKET = { stroke: "#6b7280", width: 2, dash: [6, 4] };

  function showStandings(board) {
    const input = board.input;
    $("arena-market").textContent = `${input.symbols.join(", ")}, ${input.start} to ${input.end}, ${input.decider} decider`;
    const rows = board.standings.map((row, i) => {
      const tr = document.createElement("tr");
      tr.dataset.modelId = String(row.model_id);
      const ai = row.llm ? `${row.llm.endpoint} / ${row.llm.model}` : "default";
      tr.append(
        cell(String(i + 1)), cell(row.signature), cell(ai), cell(row.status),
        cell(`${row.bars_done} / ${row.bars_total ?? "?"}`), cell(tg.money(row.equity), "num"),
        cell(tg.percent(row.total_return), "num"),
        cell(row.sharpe === null ? "n/a" : Number(row.sharpe).toFixed(2), "num"),
        cell(tg.percent(row.max_drawdown), "num"), cell(String(row.trades), "num"),
        cell(tg.percent(row.buy_and_hold_return), "num"),
      );
      return tr;
    });
    document.querySelector("#standings tbody").replaceChildren(...rows);
  }

  function showCurves(board) {
    const curves = board.curves;
    const bots = board.standings.slice().sort((a, b) => a.model_id - b.model_id);
    if (!chart) {
      const styles = [...bots.map((_, i) => ({ stroke: BOT_COLORS[i % BOT_COLORS.length], width: 2 })), MARKET];
      chart = tg.chart($("arena-chart"), [...bots.map((b) => b.signature), "Buy and hold"], styles);
    }
    // bots progress at their own pace: redraw every curve whole, a slower one with a gap at its end
    chart.replace(curves.times, [...bots.map((b) => curves.equity[String(b.model_id)] || []), curves.benchmark]);
  }

  async function follow(arenaId) {
    const res = await fetch(`/arenas/${arenaId}/stream`, { headers: { "x-api-key": tg.key() || "" } });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      $("arena-connection").textContent = (body && body.detail) || res.statusText;
      return;
    }
    $("arena-connection").textContent = "live";
    for await (const message of tg.sseEvents(res.body)) {
      if (message.event === "standings") {
        const board = JSON.parse(message.data);
        showStandings(board);
        showCurves(board);
      } else if (message.event === "end") {
        $("arena-connection").textContent = "every session has ended";
        return;
      }
    }
  }

  document.addEventListener("console:ready", () => {
    const live = $("arena");
    if (live) {
      follow(live.dataset.arenaId).catch((error) => tg.banner(`The arena cannot be followed: ${error.message}`));
      return;
    }
    $("arena-form").addEventListener("submit", startArena);
    loadForm().catch((error) => tg.banner(`Your bots cannot be loaded: ${error.message}`));
  });
})();
