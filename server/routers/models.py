"""Trading models: create, list with summaries, read, change limits, portfolio, trades, performance.

Every route is scoped to the caller: another user's model answers exactly as a missing one.
"""

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from server.deps import CurrentUser, PoolDep
from server.models_json import (
    ModelCreate,
    ModelPatch,
    ai_choice,
    curve_json,
    merged_limits,
    model_json,
    portfolio_json,
    summary_json,
    trade_json,
)
from server.store import threads as thread_store
from tradegraph import reports
from tradegraph.accounts import (
    ModelRow,
    SignatureTaken,
    User,
    create_model,
    get_model,
    limits_of,
    list_models,
    lock_model,
    terms_of,
    update_ai,
    update_limits,
    update_terms,
)
from tradegraph.database import Pool
from tradegraph.ledger import cash_and_positions, close_order
from tradegraph.limits import RiskLimits
from tradegraph.metrics import performance
from tradegraph.sessions import get_session, model_sessions

router = APIRouter(prefix="/models", tags=["models"])
OrderStatusQuery = Literal["open", "partially_filled", "filled", "cancelled", "expired", "rejected"]


def not_found(model_id: int) -> HTTPException:
    """The same 404 for a model that does not exist and one that belongs to someone else."""
    return HTTPException(404, f"model {model_id} not found")


async def owned_model(pool: Pool, model_id: int, user: User) -> ModelRow:
    """The caller's model, or 404."""
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=user.id)
    if model is None:
        raise not_found(model_id)
    return model


@router.post("", status_code=201)
async def create(body: ModelCreate, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Create a model with its cash account; 409 when the signature is already one of yours."""
    async with pool.connection() as conn:
        try:
            model = await create_model(
                conn,
                user_id=user.id,
                name=body.name,
                signature=body.signature,
                initial_cash=body.initial_cash,
                limits=body.limits or RiskLimits(),
                llm=ai_choice(body.llm),
                terms=body.terms(),
            )
        except SignatureTaken as exc:
            raise HTTPException(409, str(exc)) from exc
    return model_json(model)


@router.get("")
async def list_all(user: CurrentUser, pool: PoolDep) -> list[dict[str, Any]]:
    """The caller's models, oldest first, each with a performance summary and an equity sparkline."""
    listed = []
    async with pool.connection() as conn:
        for model in await list_models(conn, user_id=user.id):
            cash, _ = await cash_and_positions(conn, model_id=model["id"])
            figures, curve = await reports.model_performance(
                conn, model_id=model["id"], initial_cash=model["initial_cash"]
            )
            listed.append({**model_json(model), "summary": summary_json(cash, figures, curve)})
    return listed


@router.get("/{model_id}")
async def get_one(model_id: int, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """One model."""
    return model_json(await owned_model(pool, model_id, user))


@router.patch("/{model_id}")
async def patch_limits(model_id: int, body: ModelPatch, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Merge limit changes over the current limits, validate the result, and store it; replace the AI
    (`llm`) of the bot's next sessions."""
    body.check_not_empty()
    ai = ai_choice(body.llm)
    async with pool.connection() as conn, conn.transaction():
        model = await lock_model(conn, model_id=model_id, user_id=user.id)
        if model is None:
            raise not_found(model_id)
        limits = merged_limits(limits_of(model), body.limits)
        updated = await update_limits(conn, model_id=model_id, user_id=user.id, limits=limits)
        if ai is not None:
            updated = await update_ai(conn, model_id=model_id, user_id=user.id, llm=ai)
        terms = body.merged_terms(terms_of(model))
        if terms is not None:
            updated = await update_terms(conn, model_id=model_id, user_id=user.id, terms=terms)
    assert updated is not None
    return model_json(updated)


@router.get("/{model_id}/portfolio")
async def portfolio(model_id: int, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Ledger cash and positions, marked at the bar of the model's latest equity point."""
    model = await owned_model(pool, model_id, user)
    async with pool.connection() as conn:
        latest = await reports.latest_mark(conn, model_id=model_id)
    if latest is None:
        return await portfolio_json(pool, model=model, as_of=None, mode="daily")
    as_of, mode = latest
    return await portfolio_json(pool, model=model, as_of=as_of, mode=mode)


@router.get("/{model_id}/trades")
async def trades(
    model_id: int,
    user: CurrentUser,
    pool: PoolDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    status: OrderStatusQuery | None = None,
) -> dict[str, Any]:
    """Orders newest first, each with its fills (shares, average price, costs) or its rejection rule
    and reason."""
    await owned_model(pool, model_id, user)
    async with pool.connection() as conn:
        rows = await reports.trades(conn, model_id=model_id, status=status, limit=limit, offset=offset)
        total = await reports.count_orders(conn, model_id=model_id, status=status)
    return {"items": [trade_json(r) for r in rows], "limit": limit, "offset": offset, "total": total}


@router.get("/{model_id}/orders")
async def orders(
    model_id: int,
    user: CurrentUser,
    pool: PoolDep,
    status: OrderStatusQuery | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """The bot's orders newest first, with their terms, fills and every status change (bar and
    reason); `status=open` lists those that may still fill (open or partially filled)."""
    await owned_model(pool, model_id, user)
    async with pool.connection() as conn:
        rows = await reports.trades(conn, model_id=model_id, status=status, limit=limit, offset=offset)
        total = await reports.count_orders(conn, model_id=model_id, status=status)
        history = await reports.order_events(conn, order_ids=[r["id"] for r in rows])
    items = [{**trade_json(r), "events": [trade_json(e) for e in history[r["id"]]]} for r in rows]
    return {"items": items, "limit": limit, "offset": offset, "total": total}


@router.post("/{model_id}/orders/{order_id}/cancel")
async def cancel(model_id: int, order_id: int, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Cancel an open order (and its open bracket exits); 409 naming its status when it can no
    longer be cancelled, 404 when the bot has no such order."""
    await owned_model(pool, model_id, user)
    async with pool.connection() as conn:
        found = await reports.order_of(conn, model_id=model_id, order_id=order_id)
        if found is None:
            raise HTTPException(404, f"order {order_id} not found for model {model_id}")
        closed = await close_order(
            conn, order_id, status="cancelled", reason=f"cancelled by {user.name} over the API", bar_time=None
        )
        if closed is None or not closed[1]:
            raise HTTPException(
                409, f"order {order_id} is {found['status']}: only open orders can be cancelled"
            )
        row = await reports.order_of(conn, model_id=model_id, order_id=order_id)
    assert row is not None
    return trade_json(row)


@router.get("/{model_id}/performance")
async def model_performance(
    model_id: int, user: CurrentUser, pool: PoolDep, thread_id: str | None = None
) -> dict[str, Any]:
    """Return, Sharpe, drawdown, trades, buy-and-hold and the curve; `thread_id` for one session."""
    model = await owned_model(pool, model_id, user)
    initial_cash = model["initial_cash"]
    async with pool.connection() as conn:
        if thread_id is None:
            figures, curve = await reports.model_performance(
                conn, model_id=model_id, initial_cash=initial_cash
            )
            return {**figures.as_dict(), "thread_id": None, "curve": curve_json(curve)}
        session = await get_session(conn, thread_id=thread_id, model_id=model_id)
        if session is None:
            raise HTTPException(404, f"session {thread_id} not found for model {model_id}")
        curve = await reports.session_curve(conn, thread_id=thread_id)
        figures = await reports.session_performance(conn, thread_id=thread_id) or performance(
            start_equity=session["start_equity"] or initial_cash,
            equity=[],
            benchmark=[],
            trades=await reports.count_session_fills(conn, thread_id=thread_id),
            mode=session["mode"] or "daily",
        )
    return {**figures.as_dict(), "thread_id": thread_id, "curve": curve_json(curve, thread_id=thread_id)}


@router.get("/{model_id}/sessions")
async def sessions(model_id: int, user: CurrentUser, pool: PoolDep) -> list[dict[str, Any]]:
    """The model's sessions newest first, with their thread's status ('unknown' without a thread)."""
    await owned_model(pool, model_id, user)
    async with pool.connection() as conn:
        rows = await model_sessions(conn, model_id=model_id)
        status = await thread_store.statuses(conn, thread_ids=[r["thread_id"] for r in rows])
    return [
        {
            "thread_id": r["thread_id"],
            "mode": r["mode"],
            "created_at": r["created_at"].isoformat(),
            "status": status.get(r["thread_id"], "unknown"),
        }
        for r in rows
    ]
