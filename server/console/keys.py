"""The console's Keys page: the signed-in user's API keys, a form to issue one, a Revoke button on each.

Like every console page it renders the JSON API (`/me/keys`) called with the caller's key. A new
key is in the panel once, right after it is issued.
"""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.console.api import ApiDep, ApiError, ConsoleApi
from server.console.forms import FormState, read_form
from server.console.fragments import as_http
from server.console.render import templates
from server.deps import api_key_of

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
KEY_FIELDS = ("label", "expires_at")


@router.get("/console/keys")
async def keys_page(request: Request) -> HTMLResponse:
    """The shell of the Keys page (its panel loads after sign-in)."""
    return templates.TemplateResponse(request, "keys.html", {"title": "Keys"})


def _status(key: dict[str, Any], now: datetime) -> str:
    if key["revoked_at"]:
        return "revoked"
    if key["expires_at"] and datetime.fromisoformat(key["expires_at"]) <= now:
        return "expired"
    return "active"


def _in_use(keys: list[dict[str, Any]], key: str) -> str | None:
    """The prefix of the key this browser signed in with (the longest prefix it starts with)."""
    matching = [k["prefix"] for k in keys if key.startswith(k["prefix"])]
    return max(matching, key=len) if matching else None


async def _keys_panel(
    request: Request,
    api: ConsoleApi,
    form: FormState,
    *,
    issued: Any = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    keys = await api.get("/me/keys")
    now = datetime.now(UTC)
    context = {
        "keys": [{**k, "status": _status(k, now)} for k in keys],
        "in_use": _in_use(keys, api_key_of(request) or ""),
        "form": form,
        "issued": issued,
        "notice": notice,
    }
    return templates.TemplateResponse(request, "fragments/keys.html", context, status_code=status)


@router.get("/console/fragments/keys")
async def keys_panel(request: Request, api: ApiDep) -> HTMLResponse:
    """The caller's keys and the issue-a-key form."""
    return await _keys_panel(request, api, FormState({}))


@router.post("/console/fragments/keys")
async def issue_key(request: Request, api: ApiDep) -> HTMLResponse:
    """Issue a key from the form and show it once; on a 422 the form comes back with the API's message."""
    form = FormState(await read_form(request))
    body: dict[str, Any] = {"label": form.values.get("label", "")}
    if form.values.get("expires_at"):
        body["expires_at"] = form.values["expires_at"]
    try:
        issued = await api.post("/me/keys", body)
    except ApiError as exc:
        if exc.status != 422:
            raise as_http(exc) from exc
        return await _keys_panel(request, api, form.fail(exc, KEY_FIELDS), status=422)
    return await _keys_panel(request, api, FormState({}), issued=issued, status=201)


@router.post("/console/fragments/keys/{prefix}/revoke")
async def revoke_key(request: Request, prefix: str, api: ApiDep) -> HTMLResponse:
    """Revoke one of the caller's keys; revoking the one this browser uses signs it out (next 401)."""
    try:
        await api.delete(f"/me/keys/{prefix}")
    except ApiError as exc:
        raise as_http(exc) from exc
    return await _keys_panel(request, api, FormState({}), notice=f"Revoked key {prefix}.")
