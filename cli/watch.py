"""`tradegraph sessions watch`: follow a session on the server in the terminal, as the live page does.

The thread's runs are replayed in order over the API's SSE stream (the SDK rejoins a dropped
stream with `Last-Event-ID`), then new runs are followed until the session finishes or fails. A
pause for approval is shown and waited out: answer it in the web console or through the API.
"""

import asyncio
from typing import Any, cast

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from typing_extensions import TypedDict

from cli.progress import session_progress
from graph.events import FillEvent, SessionEvent
from tradegraph.money import format_money

EVENT_MODES = '["custom", "updates"]'
"""The stream filter for runs that emit custom events: no full-state `values` over the wire."""
POLL_S = 1.0
REJOINS = 5


def amount(value: Any) -> str:
    """Money for the terminal: `12,345.68`, or `-` when unknown."""
    return format_money(value) or "-"


def clock_text(clock: str | None) -> str:
    """The session clock (New York wall time) as `2012-01-03 16:00`."""
    return (clock or "")[:16].replace("T", " ")


class Mark(TypedDict):
    """What the progress bar shows after a bar: from an `equity` event, or from streamed values."""

    clock: str
    bar_index: int
    bars_total: int | None
    equity: str | None
    cash: str | None
    benchmark: str | None


class SessionView:
    """Prints decisions, verdicts, fills and pauses as they come; the bar shows bars, ETA and equity."""

    def __init__(self, progress: Progress, console_url: str) -> None:
        self.progress, self.console_url = progress, console_url
        self.task = progress.add_task("starting", total=None, equity="-")
        self.last_mark: Mark | None = None
        self.announced: set[str] = set()
        self.log_bars = not progress.console.is_terminal

    def say(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True, highlight=False)

    def on_event(self, event: str, data: Any, *, from_values: bool) -> None:
        """One SSE event of a run."""
        if event == "custom" and isinstance(data, dict):
            self.on_custom(cast(SessionEvent, data))
        elif event == "error":
            self.failed(data)
        elif isinstance(data, dict):
            if data.get("__interrupt__"):
                self.pending(data["__interrupt__"][0])
            if from_values and event == "values" and data.get("portfolio"):
                portfolio = data["portfolio"]
                self.on_mark(
                    {
                        "clock": data.get("clock", ""),
                        "bar_index": data.get("bar_index", 0),
                        "bars_total": data.get("bars_total"),
                        "equity": portfolio.get("equity"),
                        "cash": portfolio.get("cash"),
                        "benchmark": None,
                    }
                )

    def on_custom(self, e: SessionEvent) -> None:
        """A session event (graph/events.py)."""
        if e.get("clock"):
            self.progress.update(self.task, description=clock_text(e["clock"]))
        if e["type"] == "decision":
            line = f"{clock_text(e['clock'])}  decision ({e['decider']}) {e['status']}: {escape(e['reason'])}"
            self.say(f"[dim]{line}[/dim]" if e["status"] == "ok" else f"[yellow]{line}[/yellow]")
        elif e["type"] == "verdict":
            status = e["status"].replace("_", " ")
            self.say(
                f"{clock_text(e['clock'])}  verdict  {e['side']} {e['quantity']} {e['symbol']} "
                f"notional {amount(e['notional'])}: {status} ({e['rule']}: {escape(e['reason'])})"
            )
        elif e["type"] == "fill":
            self.on_fill(e)
        elif e["type"] == "equity":
            self.on_mark(
                {
                    "clock": e["clock"],
                    "bar_index": e["bar_index"],
                    "bars_total": e["bars_total"],
                    "equity": e["equity"],
                    "cash": e["cash"],
                    "benchmark": e["benchmark"],
                }
            )

    def on_fill(self, e: FillEvent) -> None:
        label = "FILL    " if e["status"] == "filled" else "REJECTED"
        line = (
            f"{clock_text(e['clock'])}  {label} {e['side']} {e['quantity']} {e['symbol']} "
            f"@ {amount(e['price'])} = {amount(e['notional'])}"
        )
        self.say(line if e["status"] == "filled" else f"{line} ({escape(e.get('reason') or '')})")

    def on_mark(self, e: Mark) -> None:
        self.last_mark = e
        self.progress.update(
            self.task,
            total=e["bars_total"],
            completed=int(e["bar_index"]) + 1,
            description=clock_text(e["clock"]),
            equity=amount(e["equity"]),
        )
        if self.log_bars:
            benchmark = f", buy and hold {amount(e['benchmark'])}" if e["benchmark"] else ""
            self.say(
                f"{clock_text(e['clock'])}  bar {int(e['bar_index']) + 1} of "
                f"{e['bars_total']}: equity {amount(e['equity'])}, cash {amount(e['cash'])}"
                f"{benchmark}"
            )

    def pending(self, interrupt: dict[str, Any]) -> None:
        """A pause for approval, shown once."""
        order = interrupt.get("value") or {}
        key = f"{interrupt.get('id')}:{order.get('proposal_id')}"
        if order.get("kind") != "order_approval" or key in self.announced:
            return
        self.announced.add(key)
        self.progress.update(self.task, description=f"{clock_text(order.get('clock'))} paused")
        self.say(
            f"[bold yellow]waiting for approval[/bold yellow]: {order['side']} {order['quantity']} "
            f"{order['symbol']} @ {amount(order['price'])} = {amount(order['notional'])}, crossed "
            f"{order['limit']} ({escape(order['reason'])}). Answer it at {self.console_url}"
        )

    def failed(self, error: Any) -> None:
        detail = f"{error.get('error')}: {error.get('message')}" if isinstance(error, dict) else str(error)
        self.say(f"[bold red]session failed[/bold red]: {escape(detail)}")

    def finished(self) -> None:
        e = self.last_mark
        if e is None:
            self.say("session finished")
            return
        self.say(
            f"session finished at {clock_text(e['clock'])}: equity {amount(e['equity'])}, "
            f"cash {amount(e['cash'])}, buy and hold {amount(e['benchmark'])}"
        )


async def follow_run(client: LangGraphClient, thread_id: str, run: dict[str, Any], view: SessionView) -> None:
    """One run's events to its `end` or `error`, rejoining after the last event seen."""
    with_custom = "custom" in (run.get("kwargs", {}).get("stream_mode") or [])
    params = {"stream_mode": EVENT_MODES} if with_custom else None
    last: str | None = None
    for attempt in range(REJOINS + 1):
        try:
            async for part in client.runs.join_stream(
                thread_id, run["run_id"], params=params, last_event_id=last
            ):
                last = part.id or last
                view.on_event(part.event, part.data, from_values=not with_custom)
                if part.event in ("end", "error"):
                    return
            return
        except httpx.TransportError:
            if attempt == REJOINS:
                raise
            view.say(f"[yellow]connection lost; rejoining after event {last}[/yellow]")
            await asyncio.sleep(1 + attempt)


async def follow_thread(client: LangGraphClient, thread_id: str, view: SessionView) -> int:
    """Every run in order, then new ones, until the thread is idle (0) or failed (1)."""
    followed: set[str] = set()
    while True:
        runs = await client.runs.list(thread_id, limit=1000)
        for run in reversed(runs):
            if run["run_id"] not in followed:
                await follow_run(client, thread_id, dict(run), view)
                followed.add(run["run_id"])
        thread = await client.threads.get(thread_id)
        if thread["status"] == "error":
            if thread.get("error"):
                view.failed(thread.get("error"))
            return 1
        if thread["status"] == "idle":
            view.finished()
            return 0
        if thread["status"] == "interrupted":
            state = await client.threads.get_state(thread_id)
            for interrupt in state.get("interrupts", [])[:1]:
                view.pending(dict(interrupt))
        await asyncio.sleep(POLL_S)


async def watch(*, url: str, api_key: str, thread_id: str) -> int:
    """Follow a session; 0 when it finished, 1 when it failed, 2 when it cannot be followed."""
    console = Console(soft_wrap=True)
    if not api_key:
        console.print("[red]error:[/red] no API key: pass --api-key or set TRADEGRAPH_API_KEY")
        return 2
    client = get_client(url=url, api_key=api_key)
    base = url.rstrip("/")
    try:
        thread = await client.threads.get(thread_id)
        console.print(f"following session {thread['thread_id']} ({thread['status']}) on {base}")
        with session_progress(console) as progress:
            view = SessionView(progress, f"{base}/console/sessions/{thread_id}")
            return await follow_thread(client, thread_id, view)
    except APIStatusError as exc:
        console.print(f"[red]error:[/red] {exc.status_code} {escape(_detail(exc))}")
        return 2
    except httpx.TransportError as exc:
        console.print(f"[red]error:[/red] cannot reach {base}: {escape(str(exc))}")
        return 2
    finally:
        await client.aclose()


def _detail(exc: APIStatusError) -> str:
    body = exc.body
    return str(body.get("detail")) if isinstance(body, dict) and body.get("detail") else exc.message
