"""The MCP tools of `/mcp`: the caller's bots and sessions, through the JSON routes' own functions.

A tool finds its caller in the ASGI scope of the HTTP request it answers (`ctx.request_context.request`),
put there by `server.mcp_server` from the request's API key; no tool takes a user, key or identity as an
argument. Another user's bot or session answers "not found", as on the JSON routes.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import HTTPException
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.requests import Request

from server.routers import arenas as arena_routes
from server.routers import models as model_routes
from server.routers import threads as thread_routes
from server.runs.create import checked_input, create_run
from server.schemas import ArenaCreate, RunCommand, RunCreate, ThreadCreate
from server.services import RunServices
from server.store import runs as run_store
from server.store.runs import ACTIVE
from tradegraph import reports
from tradegraph.accounts import User

CALLER = "tradegraph.caller"
"""The ASGI scope key holding the authenticated `Caller` of an MCP request."""

ModelId = Annotated[int, Field(description="A bot's id: the `id` field of list_bots.")]
ThreadId = Annotated[UUID, Field(description="A session's thread_id, as start_session returned it.")]
Day = Annotated[str, Field(description="A trading date YYYY-MM-DD (New York), or 'today'.")]
Symbols = Annotated[
    list[str],
    Field(min_length=1, max_length=20, description="Ticker symbols to trade, e.g. ['AAPL', 'MSFT']."),
]
Decider = Annotated[
    Literal["rule", "llm"],
    Field(description="'rule': 5/20-bar moving-average crossover (offline); 'llm': the bot's own AI."),
]


@dataclass(frozen=True)
class Caller:
    """Who an MCP request acts for, and the app's run services."""

    user: User
    services: RunServices


def caller_of(ctx: Context) -> Caller:
    """The caller of the HTTP request this tool call came in."""
    request = ctx.request_context.request
    caller = request.scope.get(CALLER) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):  # only reachable through a transport other than /mcp
        raise ToolError("not authenticated: call this tool through /mcp with an API key")
    return caller


@contextmanager
def as_tool_error() -> Iterator[None]:
    """A refusal of the JSON routes' functions (404, 409, 422...) as a tool error with its sentence."""
    try:
        yield
    except HTTPException as exc:
        raise ToolError(str(exc.detail)) from exc


async def list_bots(ctx: Context) -> list[dict[str, Any]]:
    """List your trading bots (models), oldest first, with their figures.

    Each bot has `id` (pass it as model_id to the other tools), `name`, `signature`, `initial_cash`,
    its risk `limits` (e.g. `approval_notional`: orders above this many dollars pause for your
    approval), its AI (`llm`), and `summary`: cash, equity, total return, Sharpe ratio, max drawdown,
    number of trades and an equity sparkline over all its sessions (returns are fractions: 0.05 = 5%).
    """
    caller = caller_of(ctx)
    return await model_routes.list_all(caller.user, caller.services.pool)


async def start_session(
    model_id: ModelId,
    start: Day,
    end: Day,
    symbols: Symbols,
    ctx: Context,
    decider: Decider = "rule",
    mode: Annotated[
        Literal["daily", "intraday"], Field(description="'daily' bars, or 'intraday' minute bars.")
    ] = "daily",
) -> dict[str, Any]:
    """Start a trading session of one of your bots over historical bars from `start` to `end`.

    Creates a session (a thread bound to the bot) and queues its run; it works in the background.
    Returns `thread_id` (for session_status, approve_order and reject_order), `run_id`, the run's
    `status` ('pending' at first) and `bars_total`. Poll session_status until its state is 'done', or
    'paused' when an order needs your approval. Fails, creating nothing, when the bot is not yours,
    a symbol is unknown or the dates hold no trading day.
    """
    caller = caller_of(ctx)
    services, user = caller.services, caller.user
    session = {"mode": mode, "start": start, "end": end, "symbols": symbols, "decider": decider}
    with as_tool_error():
        await checked_input(services.pool, model_id, user, session)  # refused before a thread exists
        thread = await thread_routes.create_thread(
            ThreadCreate(metadata={"model_id": model_id}), services, user, services.pool
        )
        run = await create_run(
            services,
            UUID(thread["thread_id"]),
            user,
            RunCreate(assistant_id="trading_session", input=session),
        )
    return {
        "thread_id": thread["thread_id"],
        "run_id": str(run["run_id"]),
        "model_id": model_id,
        "status": run["status"],
        "bars_total": run["kwargs"].get("bars_total"),
    }


async def start_arena(
    model_ids: Annotated[
        list[int], Field(min_length=1, max_length=20, description="Your bots' ids (1 to 20, each once).")
    ],
    start: Day,
    end: Day,
    symbols: Symbols,
    ctx: Context,
    decider: Decider = "rule",
) -> dict[str, Any]:
    """Start an arena: several of your bots trade the same market at the same time, one session each.

    Returns `arena_id` and `threads`: one {model_id, thread_id, run_id} per bot; follow each bot with
    session_status(thread_id). The standings are at GET /arenas/{arena_id} and in the console.
    """
    caller = caller_of(ctx)
    session = {"mode": "daily", "start": start, "end": end, "symbols": symbols, "decider": decider}
    with as_tool_error():
        return await arena_routes.start_arena(
            caller.services, caller.user, ArenaCreate(models=model_ids, input=session)
        )


async def session_status(thread_id: ThreadId, ctx: Context) -> dict[str, Any]:
    """Read a session: its state, progress, portfolio and the order waiting for approval, if any.

    `state` is one of 'pending' (queued), 'running', 'paused' (an order waits for approve_order or
    reject_order), 'done', 'error' (see `error`), 'stopped' (cancelled or timed out with work left)
    or 'not_started'.
    `bars_done`/`bars_total` count the bars (trading days, or minutes when intraday) traded so far;
    `clock` is the current bar's time; `portfolio` has cash, positions (shares by symbol) and equity
    at the clock (dollars). `pending_approval` (null unless paused) is the order to decide on:
    symbol, side, quantity (shares), price, notional (dollars) and the limit it crossed. `last_fills`
    are the execution reports of the bar last executed. `run` is the latest run (id, status).
    """
    caller = caller_of(ctx)
    services = caller.services
    with as_tool_error():
        thread = await thread_routes.owned_thread(services.pool, thread_id, caller.user)
        shown = await thread_routes.thread_with_state(services, thread)
    async with services.pool.connection() as conn:
        latest = await run_store.list_runs(
            conn, thread_id=thread_id, user_id=caller.user.id, status=None, limit=1, offset=0
        )
        bars_done = len(await reports.session_curve(conn, thread_id=str(thread_id)))
    run = latest[0] if latest else None
    values = shown["values"] or {}
    pending = [i["value"] for task in shown["interrupts"].values() for i in task]
    return {
        "thread_id": str(thread_id),
        "model_id": thread["model_id"],
        "state": state_of(shown["status"], run["status"] if run else None, bool(pending), values),
        "run": {"run_id": str(run["run_id"]), "status": run["status"]} if run else None,
        "error": shown["error"],
        "bars_done": bars_done,
        "bars_total": values.get("bars_total"),
        "clock": values.get("clock"),
        "portfolio": values.get("portfolio"),
        "pending_approval": pending[0] if pending else None,
        "last_fills": values.get("fills", []),
    }


def state_of(thread_status: str, run_status: str | None, paused: bool, values: dict[str, Any]) -> str:
    """One word for where a session is."""
    if run_status in ACTIVE:
        return run_status
    if thread_status == "error":
        return "error"
    if paused:
        return "paused"
    if values.get("done"):
        return "done"
    return "stopped" if run_status else "not_started"


async def approve_order(
    thread_id: ThreadId,
    ctx: Context,
    quantity: Annotated[
        int | None,
        Field(description="Shares to approve, 1 up to the proposed quantity; omit to approve it whole."),
    ] = None,
) -> dict[str, Any]:
    """Approve the order a paused session waits on (see session_status's pending_approval), whole or
    for fewer shares; the session then continues in the background. Returns the resuming `run_id`.
    Fails when the session is not paused for approval."""
    answer: dict[str, Any] = {"action": "approve"}
    if quantity is not None:
        answer["quantity"] = quantity
    return await answer_approval(caller_of(ctx), thread_id, answer)


async def reject_order(thread_id: ThreadId, ctx: Context) -> dict[str, Any]:
    """Reject the order a paused session waits on (nothing is traded); the session then continues in
    the background. Returns the resuming `run_id`. Fails when the session is not paused for approval."""
    return await answer_approval(caller_of(ctx), thread_id, {"action": "reject"})


async def answer_approval(caller: Caller, thread_id: UUID, answer: dict[str, Any]) -> dict[str, Any]:
    """Resume the paused session with the reviewer's answer, as `command.resume` of a run does.

    `reject` strategy: a second answer while the first is still queued is refused, not queued."""
    request = RunCreate(
        assistant_id="trading_session", command=RunCommand(resume=answer), multitask_strategy="reject"
    )
    with as_tool_error():
        await thread_routes.owned_thread(caller.services.pool, thread_id, caller.user)
        run = await create_run(caller.services, thread_id, caller.user, request)
    return {
        "thread_id": str(thread_id),
        "run_id": str(run["run_id"]),
        "status": run["status"],
        "answer": answer,
    }


async def bot_trades(
    model_id: ModelId,
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=500, description="How many orders, newest first.")] = 20,
    status: Annotated[
        Literal["open", "partially_filled", "filled", "cancelled", "expired", "rejected"] | None,
        Field(description="Only orders with this status ('open': open or partially filled); omit for all."),
    ] = None,
) -> dict[str, Any]:
    """A bot's orders, newest first: symbol, side, proposed_quantity and filled_quantity (shares),
    status, the fills summed (quantity, average price, notional, commission and slippage in dollars)
    or the risk rule and reason that refused it, the bar it was placed at and its session (thread_id).
    Returns `items`, and `total`: how many orders match `status`."""
    caller = caller_of(ctx)
    with as_tool_error():
        return await model_routes.trades(
            model_id, caller.user, caller.services.pool, limit=limit, offset=0, status=status
        )


async def bot_portfolio(model_id: ModelId, ctx: Context) -> dict[str, Any]:
    """A bot's cash, positions (shares, price, value) and equity in dollars, marked at the bar of its
    latest session, with its exposure (long, short, gross, net)."""
    caller = caller_of(ctx)
    with as_tool_error():
        return await model_routes.portfolio(model_id, caller.user, caller.services.pool)


READ_ONLY = ToolAnnotations(read_only_hint=True)
TOOLS = (
    (list_bots, READ_ONLY),
    (start_session, None),
    (start_arena, None),
    (session_status, READ_ONLY),
    (approve_order, None),
    (reject_order, None),
    (bot_trades, READ_ONLY),
    (bot_portfolio, READ_ONLY),
)
