"""HTML fragments htmx swaps into the console pages; every one needs the caller's `x-api-key`."""

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from server.console.api import ApiDep, ApiError, ConsoleApi
from server.console.forms import (
    LIMIT_DEFAULTS,
    MODEL_FIELDS,
    SESSION_DEFAULTS,
    FormState,
    model_body,
    read_form,
    run_input,
)
from server.console.memory import bot_memories
from server.console.render import templates
from server.deps import CurrentUser, PoolDep, ServicesDep

router = APIRouter(prefix="/console", include_in_schema=False)
TRADES_PER_PAGE = 20
OPEN_ORDERS_SHOWN = 50
ORDERS_CHANGED = "orders-changed"
"""The htmx event a cancel sends so the trades list reloads the page it shows."""
STREAM_MODES = ["values", "updates", "custom"]


def as_http(error: ApiError) -> HTTPException:
    """Pass an API failure on unchanged (htmx shows its detail)."""
    return HTTPException(error.status, error.detail)


@router.get("/whoami")
async def whoami(user: CurrentUser) -> dict[str, Any]:
    """Who the key belongs to: the sign-in check."""
    return {"id": user.id, "name": user.name}


async def _models_panel(
    request: Request, api: ConsoleApi, form: FormState, *, created: Any = None, status: int = 200
) -> HTMLResponse:
    context = {
        "models": await api.get("/models"),
        "form": form,
        "defaults": LIMIT_DEFAULTS,
        "created": created,
    }
    return templates.TemplateResponse(request, "fragments/models.html", context, status_code=status)


@router.get("/fragments/models", response_class=HTMLResponse)
async def models_panel(request: Request, api: ApiDep) -> HTMLResponse:
    """The models table and the create-model form."""
    return await _models_panel(request, api, FormState({}))


@router.post("/fragments/models", response_class=HTMLResponse)
async def create_model(request: Request, api: ApiDep) -> HTMLResponse:
    """Create a model from the form; on failure the form comes back with the API's message."""
    form = FormState(await read_form(request))
    body, missing = model_body(form.values)
    if body is None:
        form.message, form.field_errors = "Fill in the required fields.", missing
        return await _models_panel(request, api, form, status=422)
    try:
        created = await api.post("/models", body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise as_http(exc) from exc
        return await _models_panel(request, api, form.fail(exc, MODEL_FIELDS), status=exc.status)
    return await _models_panel(request, api, FormState({}), created=created, status=201)


@router.get("/fragments/models/{model_id}", response_class=HTMLResponse)
async def model_panel(
    request: Request, model_id: int, api: ApiDep, user: CurrentUser, pool: PoolDep, services: ServicesDep
) -> HTMLResponse:
    """Everything on the model page below its header."""
    base = f"/models/{model_id}"
    try:
        model, portfolio, performance, orders, trades, sessions, market = await asyncio.gather(
            api.get(base),
            api.get(f"{base}/portfolio"),
            api.get(f"{base}/performance"),
            api.get(f"{base}/orders", status="open", limit=OPEN_ORDERS_SHOWN),
            api.get(f"{base}/trades", limit=TRADES_PER_PAGE, offset=0),
            api.get(f"{base}/sessions"),
            api.get("/market/symbols"),
        )
    except ApiError as exc:
        raise as_http(exc) from exc
    context = {
        "memories": await bot_memories(pool, services, user, model_id),
        "model": model,
        "portfolio": portfolio,
        "performance": performance,
        "orders": orders,
        "trades": trades,
        "sessions": sessions,
        "form": FormState(dict(SESSION_DEFAULTS)),
        "market": market,
    }
    return templates.TemplateResponse(request, "fragments/model.html", context)


@router.get("/fragments/models/{model_id}/trades", response_class=HTMLResponse)
async def trades_page(request: Request, model_id: int, api: ApiDep, offset: int = 0) -> HTMLResponse:
    """One page of the model's trades."""
    try:
        trades = await api.get(f"/models/{model_id}/trades", limit=TRADES_PER_PAGE, offset=max(0, offset))
    except ApiError as exc:
        raise as_http(exc) from exc
    return templates.TemplateResponse(
        request, "fragments/trades.html", {"model": {"id": model_id}, "trades": trades}
    )


async def _open_orders_panel(
    request: Request, api: ConsoleApi, model_id: int, *, notice: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    try:
        orders = await api.get(f"/models/{model_id}/orders", status="open", limit=OPEN_ORDERS_SHOWN)
    except ApiError as exc:
        raise as_http(exc) from exc
    context = {"model": {"id": model_id}, "orders": orders, "notice": notice, "error": error}
    return templates.TemplateResponse(request, "fragments/orders.html", context, status_code=status)


@router.get("/fragments/models/{model_id}/orders", response_class=HTMLResponse)
async def open_orders(request: Request, model_id: int, api: ApiDep) -> HTMLResponse:
    """The model's orders that may still fill."""
    return await _open_orders_panel(request, api, model_id)


@router.post("/fragments/models/{model_id}/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_order(request: Request, model_id: int, order_id: int, api: ApiDep) -> HTMLResponse:
    """Cancel an open order through the API; the panel comes back without it (or with the API's
    409 when it filled or closed meanwhile), and either way the trades list is told to reload."""
    try:
        await api.post(f"/models/{model_id}/orders/{order_id}/cancel", {})
    except ApiError as exc:
        if exc.status != 409:
            raise as_http(exc) from exc
        panel = await _open_orders_panel(request, api, model_id, error=exc.detail, status=409)
    else:
        panel = await _open_orders_panel(request, api, model_id, notice=f"Cancelled order {order_id}.")
    panel.headers["HX-Trigger"] = ORDERS_CHANGED
    return panel


@router.post("/fragments/models/{model_id}/sessions", response_class=HTMLResponse)
async def start_session(request: Request, model_id: int, api: ApiDep) -> Response:
    """Create the session's thread and its first run, then send the browser to the live page."""
    form = FormState(await read_form(request))
    try:
        thread = await api.post("/threads", {"metadata": {"model_id": model_id}})
    except ApiError as exc:
        raise as_http(exc) from exc
    thread_id = thread["thread_id"]
    run = {
        "assistant_id": "trading_session",
        "input": run_input(form.values),
        "stream_mode": STREAM_MODES,
    }
    try:
        await api.post(f"/threads/{thread_id}/runs", run)
    except ApiError as exc:
        await api.delete(f"/threads/{thread_id}")  # a session that never started leaves no thread
        if exc.status not in (409, 422):
            raise as_http(exc) from exc
        market = await api.get("/market/symbols")
        context = {"model": {"id": model_id}, "form": form.fail(exc, ()), "market": market}
        return templates.TemplateResponse(
            request, "fragments/session_form.html", context, status_code=exc.status
        )
    return Response(status_code=204, headers={"HX-Redirect": f"/console/sessions/{thread_id}"})
