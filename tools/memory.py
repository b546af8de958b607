"""The bot's memory tools: `remember` a note for later sessions, `recall` what it noted or reflected.

The namespace comes from graph state (the bot's `model_id` and `owner_id`), never from the model:
neither tool has a namespace argument, and arguments a tool does not declare are dropped before
it runs, so a model cannot read or write another bot's memories.
"""

from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolRuntime
from langgraph.store.base import BaseStore

from graph.context import SessionContext, pool_of
from tradegraph import memory

NO_STORE = "memory is not available in this run (the graph was compiled without a store)"


async def _space(runtime: ToolRuntime[SessionContext, Any]) -> tuple[BaseStore, tuple[str, ...]] | None:
    if runtime.store is None:
        return None
    state = runtime.state
    namespace = await memory.memory_namespace(
        await pool_of(runtime.context), model_id=state["model_id"], owner_id=state.get("owner_id")
    )
    return runtime.store, namespace


def _thread_of(runtime: ToolRuntime[SessionContext, Any]) -> str:
    """The session's thread (else the run), like the ledger's `ledger_thread_of`."""
    info = runtime.execution_info
    return (info.thread_id or info.run_id or "unthreaded") if info else "unthreaded"


@tool
async def remember(note: str, runtime: ToolRuntime[SessionContext, Any]) -> str:
    """Keep a short note for your later sessions (what you saw, what to try or avoid). Later sessions
    of this bot find it with recall; nobody else's bots can."""
    space = await _space(runtime)
    if space is None:
        return NO_STORE
    if not note.strip():
        return "nothing remembered: the note is empty"
    state = runtime.state
    thread_id = _thread_of(runtime)
    key = f"note:{thread_id}:{state.get('start_count', 1)}:{state['bar_index']}:{runtime.tool_call_id}"
    await memory.remember(
        space[0], space[1], key=key, kind="note", text=note, thread_id=thread_id, clock=state["clock"]
    )
    return f"Remembered: {note.strip()[: memory.MAX_TEXT_CHARS]}"


@tool
async def recall(query: str, runtime: ToolRuntime[SessionContext, Any]) -> dict[str, Any]:
    """Search your notes and past-session reflections: every word of `query` must appear (any case),
    e.g. "AAPL" or "reflection"; an empty query gives your newest. At most 5, newest first, and only
    what was written at or before the current session time."""
    space = await _space(runtime)
    if space is None:
        return {"query": query, "memories": [], "note": NO_STORE}
    found = await memory.recall(space[0], space[1], query, as_of=runtime.state["clock"])
    return {
        "query": query,
        "memories": [
            {
                "kind": m["kind"],
                "text": m["text"],
                "session_time": m["clock"],
                "saved": m["created_at"].isoformat(),
            }
            for m in found
        ],
    }
