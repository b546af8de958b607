"""The model page's Memory panel: the bot's notes and session reflections, newest first, with a
Delete button on each.

There is no JSON route for a bot's memory yet, so the panel reads LangGraph's store (the run
graph's own) directly, after checking that the signed-in user owns the model; and the namespace
is always in that user's private space (`tradegraph.namespaces`), so no model id can reach
another user's memories.
"""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from langgraph.store.base import BaseStore

from server.console.forms import read_form
from server.console.render import templates
from server.deps import CurrentUser, PoolDep, ServicesDep
from server.services import RunServices
from tradegraph import memory
from tradegraph.accounts import User, get_model
from tradegraph.database import Pool

router = APIRouter(prefix="/console/fragments", include_in_schema=False, default_response_class=HTMLResponse)
MEMORIES_SHOWN = 100


async def bot_space(
    pool: Pool, services: RunServices, user: User, model_id: int
) -> tuple[BaseStore, tuple[str, ...]]:
    """The store and the bot's memory namespace; 404 unless the caller owns the model."""
    async with pool.connection() as conn:
        model = await get_model(conn, model_id=model_id, user_id=user.id)
    store = services.graph.store
    if model is None:
        raise HTTPException(404, f"model {model_id} not found")
    if store is None:
        raise HTTPException(503, "this server's graph has no store: bot memory is unavailable")
    return store, await memory.memory_namespace(pool, model_id=model_id, owner_id=model["user_id"])


async def bot_memories(pool: Pool, services: RunServices, user: User, model_id: int) -> list[memory.Memory]:
    """The bot's newest memories, for the caller who owns it."""
    store, namespace = await bot_space(pool, services, user, model_id)
    return await memory.newest(store, namespace, limit=MEMORIES_SHOWN)


async def _panel(
    request: Request, memories: list[memory.Memory], model_id: int, *, notice: str = ""
) -> HTMLResponse:
    context = {"model": {"id": model_id}, "memories": memories, "memory_notice": notice}
    return templates.TemplateResponse(request, "fragments/memory.html", context)


@router.get("/models/{model_id}/memory")
async def memory_panel(
    request: Request, model_id: int, user: CurrentUser, pool: PoolDep, services: ServicesDep
) -> HTMLResponse:
    """The bot's memories, newest first."""
    return await _panel(request, await bot_memories(pool, services, user, model_id), model_id)


@router.post("/models/{model_id}/memory/delete")
async def delete_memory(
    request: Request, model_id: int, user: CurrentUser, pool: PoolDep, services: ServicesDep
) -> HTMLResponse:
    """Delete one memory (form field `key`); the panel comes back without it."""
    key = (await read_form(request)).get("key", "")
    store, namespace = await bot_space(pool, services, user, model_id)
    if not key or not await memory.forget(store, namespace, key=key):
        raise HTTPException(404, f"memory {key!r} not found for model {model_id}")
    memories = await memory.newest(store, namespace, limit=MEMORIES_SHOWN)
    return await _panel(request, memories, model_id, notice="Deleted the memory.")
