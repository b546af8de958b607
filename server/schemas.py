"""Request bodies of the LangGraph protocol routes (unknown keys are ignored, as upstream)."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from server.store.threads import PruneStrategy

StreamMode = Literal[
    "values", "updates", "custom", "messages-tuple", "messages", "debug", "tasks", "checkpoints"
]
"""The protocol stream modes served. `events` (LangChain's astream_events) is not: naming it is a 422."""


class Body(BaseModel):
    """Base: ignore unknown keys (the SDK sends a few we do not use)."""

    model_config = ConfigDict(extra="ignore")


class ThreadTTL(Body):
    """langgraph-api's thread time to live: minutes after the thread's last activity, then `strategy`."""

    ttl: float = Field(gt=0, le=525_600 * 100)
    strategy: PruneStrategy = "delete"


class ArenaCreate(Body):
    """POST /arenas: the caller's bots, and the one session request they all run."""

    models: list[int] = Field(min_length=1, max_length=20)
    input: dict[str, Any]


class ThreadCreate(Body):
    thread_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: ThreadTTL | None = None


class ThreadPatch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: ThreadTTL | None = None


class ThreadPrune(Body):
    thread_ids: list[UUID] = Field(min_length=1, max_length=1000)
    strategy: PruneStrategy = "delete"


class ThreadSearch(Body):
    ids: list[UUID] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"


class HistoryRequest(Body):
    limit: int = Field(default=1, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class StateUpdate(Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: dict[str, Any] | None = None


class AssistantSearch(Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class RunCommand(Body):
    resume: Any = None
    update: dict[str, Any] | list[Any] | None = None
    goto: str | list[str] | None = None


class RunCreate(Body):
    assistant_id: str
    input: Any = None
    command: RunCommand | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_resumable: bool = False
    stream_subgraphs: bool = False
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    checkpoint_id: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "enqueue"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    durability: Literal["sync", "async", "exit"] = "async"
    webhook: str | None = None

    def modes(self) -> list[StreamMode]:
        """stream_mode as a list, duplicates removed."""
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]
