"""The console's Data page: every symbol with its daily and minute-bar ranges (from `GET /market/symbols`).

The session form reads the same list (`fragments.py`) to offer the symbols and show their ranges.
"""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.console.api import ApiDep, ApiError
from server.console.fragments import as_http
from server.console.render import templates

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/console/data")
async def data_page(request: Request) -> HTMLResponse:
    """The shell of the Data page (its table loads after sign-in)."""
    return templates.TemplateResponse(request, "data.html", {"title": "Data"})


@router.get("/console/fragments/data")
async def data_panel(request: Request, api: ApiDep) -> HTMLResponse:
    """The symbols table."""
    try:
        symbols = await api.get("/market/symbols")
    except ApiError as exc:
        raise as_http(exc) from exc
    return templates.TemplateResponse(request, "fragments/data.html", {"symbols": symbols})
