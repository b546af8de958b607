"""StateSnapshot -> the protocol's ThreadState JSON, and the thread object around it."""

from typing import Any

from langgraph.types import StateSnapshot

from server.serialization import to_jsonable
from server.store.threads import ThreadRow


def _checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    if not configurable.get("checkpoint_id"):
        return None
    return {
        "checkpoint_id": configurable["checkpoint_id"],
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
    }


def _interrupts(interrupts: Any) -> list[dict[str, Any]]:
    return [{"id": i.id, "value": to_jsonable(i.value)} for i in interrupts or ()]


def thread_state(snapshot: StateSnapshot) -> dict[str, Any]:
    """The ThreadState of one checkpoint."""
    checkpoint, parent = _checkpoint(snapshot.config), _checkpoint(snapshot.parent_config)
    metadata = dict(snapshot.metadata or {})
    if metadata.get("checkpoint_ns") == "":
        metadata.pop("checkpoint_ns")
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "path": list(task.path),
                "error": {"error": type(task.error).__name__, "message": str(task.error)}
                if task.error
                else None,
                "interrupts": _interrupts(task.interrupts),
                "checkpoint": None,
                "state": None,
                "result": to_jsonable(getattr(task, "result", None)),
            }
            for task in snapshot.tasks
        ],
        "metadata": to_jsonable(metadata) if snapshot.metadata is not None else None,
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": _interrupts(snapshot.interrupts),
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def thread_json(thread: ThreadRow, snapshot: StateSnapshot | None, error: Any = None) -> dict[str, Any]:
    """The protocol's thread object."""
    interrupts = {
        task.id: _interrupts(task.interrupts)
        for task in (snapshot.tasks if snapshot else ())
        if task.interrupts
    }
    return {
        "thread_id": str(thread["thread_id"]),
        "created_at": thread["created_at"].isoformat(),
        "updated_at": thread["updated_at"].isoformat(),
        "state_updated_at": thread["state_updated_at"].isoformat(),
        "metadata": thread["metadata"],
        "status": thread["status"],
        "config": {},
        "values": to_jsonable(snapshot.values) if snapshot and snapshot.values else None,
        "interrupts": interrupts,
        "error": error,
        "ttl": (
            {"ttl": thread["ttl_minutes"], "strategy": thread["ttl_strategy"]}
            if thread["ttl_minutes"]
            else None
        ),
    }


def final_values(snapshot: StateSnapshot) -> dict[str, Any]:
    """What /wait answers: the values, with `__interrupt__` when the session is paused."""
    values: dict[str, Any] = to_jsonable(snapshot.values or {})
    if snapshot.interrupts:
        values["__interrupt__"] = [{"id": i.id, "value": to_jsonable(i.value)} for i in snapshot.interrupts]
    return values
