"""Page shells of the console. They hold no data: the browser signs in and loads it with its key.

Browsers cannot send `x-api-key` on a navigation, so pages are public and every piece of data
on them comes from a fragment or API call that carries the key.
"""

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from server.console.render import templates

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    """The models page (after sign-in)."""
    return templates.TemplateResponse(request, "home.html", {"title": "Models"})


@router.get("/console/models/{model_id}")
async def model_page(request: Request, model_id: int) -> HTMLResponse:
    """One model: curve, positions, trades, sessions, and the form that starts a session."""
    return templates.TemplateResponse(request, "model.html", {"title": "Model", "model_id": model_id})


@router.get("/console/arenas")
async def arenas_page(request: Request) -> HTMLResponse:
    """Start an arena (pick bots, dates, symbols) and see past ones."""
    return templates.TemplateResponse(request, "arenas.html", {"title": "Arenas"})


@router.get("/console/arenas/{arena_id}")
async def arena_page(request: Request, arena_id: UUID) -> HTMLResponse:
    """One arena: live standings and every bot's equity curve overlaid with buy-and-hold."""
    return templates.TemplateResponse(request, "arena.html", {"title": "Arena", "arena_id": arena_id})


@router.get("/console/sessions/{thread_id}")
async def session_page(request: Request, thread_id: UUID) -> HTMLResponse:
    """The live page of one session."""
    return templates.TemplateResponse(request, "session.html", {"title": "Session", "thread_id": thread_id})


@router.get("/console/sessions/{thread_id}/studio")
async def studio_page(request: Request, thread_id: UUID) -> HTMLResponse:
    """How to open this session in LangGraph Studio."""
    base_url = str(request.base_url).rstrip("/")
    return templates.TemplateResponse(
        request,
        "studio.html",
        {"title": "Open in LangGraph Studio", "thread_id": thread_id, "base_url": base_url},
    )
