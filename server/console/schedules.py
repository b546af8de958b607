"""The console's Schedules page of a bot: its crons, a form to add a daily one, Pause/Resume and Delete.

Like every console page it renders the JSON API called with the caller's key: a bot's crons are
`POST /runs/crons/search` by `metadata.model_id`, and the runs one started are the threads with
its `metadata.cron_id` (each run of a cron without a thread gets a new thread).
"""

import asyncio
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.console.api import ApiDep, ApiError, ConsoleApi
from server.console.forms import FormState
from server.console.fragments import as_http
from server.console.render import MARKET_TZ, market_time, templates
from server.console.schedule_form import (
    SCHEDULE_DEFAULTS,
    SCHEDULE_FIELDS,
    WEEKDAYS,
    ZONES,
    cron_body,
    described,
    read_schedule_form,
)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CRONS_SHOWN = 100
RUNS_SHOWN = 5


@router.get("/console/models/{model_id}/schedules")
async def schedules_page(request: Request, model_id: int) -> HTMLResponse:
    """The shell of a bot's Schedules page (its panel loads after sign-in)."""
    context = {"title": "Schedules", "model_id": model_id}
    return templates.TemplateResponse(request, "schedules.html", context)


async def _crons(api: ConsoleApi, model_id: int) -> list[dict[str, Any]]:
    """The bot's crons, newest first (`metadata.model_id` as a number, or as a string from some clients)."""
    found = await asyncio.gather(
        *(
            api.post("/runs/crons/search", {"metadata": {"model_id": key}, "limit": CRONS_SHOWN})
            for key in (model_id, str(model_id))
        )
    )
    crons = {cron["cron_id"]: cron for batch in found for cron in batch}
    return sorted(crons.values(), key=lambda cron: str(cron["created_at"]), reverse=True)


async def _runs(api: ConsoleApi, cron_id: str) -> list[dict[str, Any]]:
    """The latest sessions the cron started."""
    search = {"metadata": {"cron_id": cron_id}, "limit": RUNS_SHOWN, "sort_by": "created_at"}
    runs: list[dict[str, Any]] = await api.post("/threads/search", search)
    return runs


async def _schedules_panel(
    request: Request,
    api: ConsoleApi,
    model_id: int,
    form: FormState,
    *,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    try:
        model = await api.get(f"/models/{model_id}")  # another user's bot is a 404 here
        crons, market = await asyncio.gather(_crons(api, model_id), api.get("/market/symbols"))
        runs = await asyncio.gather(*(_runs(api, cron["cron_id"]) for cron in crons))
    except ApiError as exc:
        raise as_http(exc) from exc
    context = {
        "model": model,
        "schedules": [
            {**cron, "described": described(cron["schedule"]), "runs": started}
            for cron, started in zip(crons, runs, strict=True)
        ],
        "form": form,
        "market": market,
        "notice": notice,
        "weekdays": WEEKDAYS,
        "zones": ZONES,
        "market_zone": MARKET_TZ.key,
    }
    return templates.TemplateResponse(request, "fragments/schedules.html", context, status_code=status)


@router.get("/console/fragments/models/{model_id}/schedules")
async def schedules_panel(request: Request, model_id: int, api: ApiDep) -> HTMLResponse:
    """The bot's schedules and the add-a-schedule form."""
    return await _schedules_panel(request, api, model_id, FormState(dict(SCHEDULE_DEFAULTS)))


@router.post("/console/fragments/models/{model_id}/schedules")
async def create_schedule(request: Request, model_id: int, api: ApiDep) -> HTMLResponse:
    """Add a daily schedule from the form; on a 422 the form comes back with the API's message."""
    form = FormState(await read_schedule_form(request))
    body, invalid = cron_body(form.values, model_id)
    if body is None:
        form.message, form.field_errors = "Fix the fields marked below.", invalid
        return await _schedules_panel(request, api, model_id, form, status=422)
    try:
        cron = await api.post("/runs/crons", body)
    except ApiError as exc:
        if exc.status != 422:
            raise as_http(exc) from exc
        return await _schedules_panel(request, api, model_id, form.fail(exc, SCHEDULE_FIELDS), status=422)
    label, when = described(cron["schedule"]) or cron["schedule"], market_time(cron["next_run_date"])
    notice = f"Added schedule {label} ({cron['timezone']}): next run {when or 'none'} New York time."
    defaults = FormState(dict(SCHEDULE_DEFAULTS))
    return await _schedules_panel(request, api, model_id, defaults, notice=notice, status=201)


async def _set_enabled(
    request: Request, api: ConsoleApi, model_id: int, cron_id: UUID, *, enabled: bool
) -> HTMLResponse:
    try:
        await api.patch(f"/runs/crons/{cron_id}", {"enabled": enabled})
    except ApiError as exc:
        raise as_http(exc) from exc
    notice = f"{'Resumed' if enabled else 'Paused'} schedule {str(cron_id)[:8]}."
    return await _schedules_panel(request, api, model_id, FormState(dict(SCHEDULE_DEFAULTS)), notice=notice)


@router.post("/console/fragments/models/{model_id}/schedules/{cron_id}/pause")
async def pause_schedule(request: Request, model_id: int, cron_id: UUID, api: ApiDep) -> HTMLResponse:
    """Pause a schedule: it starts no runs until resumed."""
    return await _set_enabled(request, api, model_id, cron_id, enabled=False)


@router.post("/console/fragments/models/{model_id}/schedules/{cron_id}/resume")
async def resume_schedule(request: Request, model_id: int, cron_id: UUID, api: ApiDep) -> HTMLResponse:
    """Resume a paused schedule from its next due time (missed ones are not replayed)."""
    return await _set_enabled(request, api, model_id, cron_id, enabled=True)


@router.post("/console/fragments/models/{model_id}/schedules/{cron_id}/delete")
async def delete_schedule(request: Request, model_id: int, cron_id: UUID, api: ApiDep) -> HTMLResponse:
    """Delete a schedule; the sessions it started stay."""
    try:
        await api.delete(f"/runs/crons/{cron_id}")
    except ApiError as exc:
        raise as_http(exc) from exc
    notice = f"Deleted schedule {str(cron_id)[:8]}; the sessions it started stay."
    return await _schedules_panel(request, api, model_id, FormState(dict(SCHEDULE_DEFAULTS)), notice=notice)
