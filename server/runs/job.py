"""The job of a queued run: everything a worker needs to execute it, typed, stored with the run.

`create.py` builds it from a checked request; it is stored as the run's `kwargs` (JSON) and read
back by the executor in whichever process takes the run.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.schemas import StreamMode

Durability = Literal["sync", "async", "exit"]


class RunJob(BaseModel):
    """What to run (input or command), how to stream it, and how much work it may take."""

    model_config = ConfigDict(extra="ignore")

    input: dict[str, Any] | None = None
    """The checked session input with identity from the database, when the run starts a session."""

    command: dict[str, Any] | None = None
    """`resume`, `update` and/or `goto` for LangGraph's `Command`, when the run continues one."""

    stream_mode: list[StreamMode] = Field(default_factory=lambda: list[StreamMode](["values"]))
    """Protocol stream modes the client asked for (every event is stored either way)."""

    config: dict[str, Any] = Field(default_factory=dict)
    """The client's config; only its `configurable` keys reach the graph."""

    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    durability: Durability = "async"
    checkpoint_id: str | None = None
    """Start from this checkpoint instead of the latest (a replay or fork)."""

    resumable: bool = True
    """Always true: every event is stored, so every stream can be rejoined."""

    on_disconnect: Literal["cancel", "continue"] = "continue"

    webhook: str | None = None
    """Called when the run ends or pauses for approval (server/webhooks.py)."""

    answers: list[str] = Field(default_factory=list)
    """Ids of the interrupts `command.resume` answers (pending when the run was created): once none is
    pending any more, the answer was given, and a re-executed run must not send it again."""

    bars_total: int = Field(default=1, ge=1)
    """Bars this run may execute; sizes its recursion limit. Internal, like `answers`: not in `kwargs`."""

    def protocol_kwargs(self) -> dict[str, Any]:
        """The run's `kwargs` as the protocol shows them."""
        return self.model_dump(mode="json", exclude={"bars_total", "answers"})
