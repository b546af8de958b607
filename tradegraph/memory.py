"""A bot's memory: notes it keeps and reflections on its sessions, in LangGraph's store.

Every item lives under `private(owner, bot_memories(model_id))`, the bot owner's own space, so one
user's bots never read another user's memories. The namespace is derived from the session's
identity (state), never from anything a model or a client sends. The store has no vector index, so
`recall` matches words itself: every word of the query must appear in the memory's text.
"""

import re
from datetime import datetime
from typing import Any, Literal

from langgraph.store.base import BaseStore, Item
from typing_extensions import TypedDict

from tradegraph.accounts import get_model
from tradegraph.database import Pool
from tradegraph.namespaces import bot_memories, private

MemoryKind = Literal["note", "reflection"]
RECALL_LIMIT = 5
"""Most memories one `recall` answers with."""
MAX_TEXT_CHARS = 1000
"""Longest memory kept (longer text is cut)."""
SCAN_PAGE = 100
"""Items read from the store per page while matching a query."""


class Memory(TypedDict):
    """One memory as tools, prompts and the console show it."""

    key: str
    kind: MemoryKind
    text: str
    clock: str | None
    """Session time (bar close) when it was written; None when unknown."""
    created_at: datetime


async def memory_namespace(pool: Pool, *, model_id: int, owner_id: int | None) -> tuple[str, ...]:
    """Where the bot's memories are stored; the owner is read from the model row when the session's
    state has none (sessions started before `owner_id` was copied into state)."""
    if owner_id is None:
        async with pool.connection() as conn:
            model = await get_model(conn, model_id=model_id, user_id=None)
        if model is None:
            raise LookupError(f"model {model_id} no longer exists")
        owner_id = model["user_id"]
    return private(owner_id, bot_memories(model_id))


async def remember(
    store: BaseStore,
    namespace: tuple[str, ...],
    *,
    key: str,
    kind: MemoryKind,
    text: str,
    thread_id: str,
    clock: str,
) -> None:
    """Write one memory under `key` (writing the same key again replaces it: replays never duplicate)."""
    value = {"kind": kind, "text": text.strip()[:MAX_TEXT_CHARS], "thread_id": thread_id, "clock": clock}
    await store.aput(namespace, key, value, index=False)


async def newest(
    store: BaseStore, namespace: tuple[str, ...], *, limit: int, as_of: str | None = None
) -> list[Memory]:
    """The bot's newest memories, newest first (only those written at or before `as_of`, if given)."""
    return await recall(store, namespace, "", limit=limit, as_of=as_of)


async def recall(
    store: BaseStore,
    namespace: tuple[str, ...],
    query: str,
    *,
    limit: int = RECALL_LIMIT,
    as_of: str | None = None,
) -> list[Memory]:
    """Memories whose text holds every word of `query` (any case), newest first; an empty query
    answers the newest ones. With `as_of` (a session clock), only memories written at a session time
    at or before it: a backtest over earlier dates must not learn from later ones (no look-ahead)."""
    words = _words(query)
    found: list[Memory] = []
    offset = 0
    while len(found) < limit:
        page = await store.asearch(namespace, limit=SCAN_PAGE, offset=offset)
        found += [m for m in map(_memory, page) if _matches(m, words) and _seen_by(m, as_of)]
        if len(page) < SCAN_PAGE:
            break
        offset += SCAN_PAGE
    return found[:limit]


async def forget(store: BaseStore, namespace: tuple[str, ...], *, key: str) -> bool:
    """Delete one memory; False when there was none under `key`."""
    if await store.aget(namespace, key) is None:
        return False
    await store.adelete(namespace, key)
    return True


def _words(query: str) -> list[str]:
    return re.findall(r"[\w.%+-]+", query.lower())


def _seen_by(memory: Memory, as_of: str | None) -> bool:
    """Whether a session at `as_of` may see the memory (ISO times of one format compare as text)."""
    return as_of is None or memory["clock"] is None or memory["clock"] <= as_of


def _matches(memory: Memory, words: list[str]) -> bool:
    text = f"{memory['kind']} {memory['text']}".lower()
    return all(word in text for word in words)


def _memory(item: Item) -> Memory:
    value: dict[str, Any] = item.value
    kind: MemoryKind = "reflection" if value.get("kind") == "reflection" else "note"
    return {
        "key": item.key,
        "kind": kind,
        "text": str(value.get("text", "")),
        "clock": value.get("clock"),
        "created_at": item.created_at,
    }
