"""The last checkpoint a run of this process saved, kept to answer the run's final state read.

When a run ends, the executor reads the thread's state once more (for the run's result, the
thread's status and webhooks): a round trip for the checkpoint, its blobs and its writes, all of
which this process has just saved. For a thread it `track`s, the saver records here the last
checkpoint it saved and every write saved against it, and `tuple_of` rebuilds what the database
would return: the stored JSON parts through a JSON round trip, as `jsonb` gives them back, and the
serialized channel values and writes through the serializer, so no live object is shared.

Only a run holding its thread makes this true: the API refuses state updates and deletions while a
run is in flight, so nothing but the run writes the thread's checkpoints. The executor tracks the
thread for a run's duration only, and stops using it after a database outage (a checkpoint committed
asynchronously may have been lost with the server).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple, get_checkpoint_id, writes_sort_key
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from tradegraph.database import dump_json, load_json

WriteRow = Sequence[Any]
"""A write as the saver dumps it: thread, ns, checkpoint, task, path, idx, channel, type, blob."""


@dataclass
class _Checkpoint:
    config: RunnableConfig
    stored: dict[str, Any]
    """The checkpoint as its JSON column holds it (channel values: only those stored inline)."""
    blob_values: dict[str, Any]
    """The other channel values, serialized again when read."""
    metadata: dict[str, Any]
    parent_config: RunnableConfig | None


@dataclass
class _Thread:
    checkpoint: _Checkpoint | None = None
    writes: dict[str, dict[tuple[str, int], WriteRow]] = field(default_factory=dict)
    """Writes by checkpoint id, then by task and index (as the table's key)."""


class LastSaved:
    """The last checkpoint saved for each tracked thread, with its writes."""

    def __init__(self, serde: SerializerProtocol) -> None:
        self._serde = serde
        self._threads: dict[str, _Thread] = {}

    def track(self, thread_id: str) -> None:
        """Start (again) from nothing: a run of this process now holds the thread."""
        self._threads[str(thread_id)] = _Thread()

    def untrack(self, thread_id: str) -> None:
        self._threads.pop(str(thread_id), None)

    def saved(
        self,
        config: RunnableConfig,
        stored: dict[str, Any],
        blob_values: dict[str, Any],
        metadata: dict[str, Any],
        parent_config: RunnableConfig | None,
    ) -> None:
        """The saver committed a checkpoint: its JSON column `stored`, the channel values it keeps
        as blobs `blob_values`, and its metadata column `metadata`."""
        configurable = config["configurable"]
        thread = self._threads.get(str(configurable["thread_id"]))
        if thread is None:
            return
        if configurable["checkpoint_ns"] or any(isinstance(v, _DeltaSnapshot) for v in blob_values.values()):
            self.untrack(configurable["thread_id"])  # subgraphs and delta channels: read the database
            return
        thread.checkpoint = _Checkpoint(config, stored, blob_values, metadata, parent_config)
        checkpoint_id = configurable["checkpoint_id"]
        thread.writes = {cid: w for cid, w in thread.writes.items() if cid >= checkpoint_id}

    def wrote(self, rows: Sequence[WriteRow], *, replace: bool) -> None:
        """The saver saved (or holds) these writes; `replace`: special writes, the last one wins."""
        if not rows or (thread := self._threads.get(str(rows[0][0]))) is None:
            return
        writes = thread.writes.setdefault(rows[0][2], {})
        for row in rows:
            if replace:
                writes[(row[3], row[5])] = row
            else:
                writes.setdefault((row[3], row[5]), row)

    def tuple_of(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The last saved checkpoint of a tracked thread as the database would return it, if
        `config` asks for it (the latest, or that id); None: read the database."""
        configurable = config["configurable"]
        thread = self._threads.get(str(configurable["thread_id"]))
        if thread is None or thread.checkpoint is None or configurable.get("checkpoint_ns", ""):
            return None
        saved = thread.checkpoint
        checkpoint_id = saved.config["configurable"]["checkpoint_id"]
        if get_checkpoint_id(config) not in (None, checkpoint_id):
            return None
        stored = load_json(dump_json(saved.stored))
        serde = self._serde
        values = {k: serde.loads_typed(serde.dumps_typed(v)) for k, v in saved.blob_values.items()}
        writes = thread.writes.get(checkpoint_id, {}).values()
        rows = sorted(writes, key=lambda w: writes_sort_key(w[4], w[3], w[5]))
        checkpoint = cast(Checkpoint, {**stored, "channel_values": {**stored["channel_values"], **values}})
        return CheckpointTuple(
            saved.config,
            checkpoint,
            load_json(dump_json(saved.metadata)),
            saved.parent_config,
            [(w[3], w[6], serde.loads_typed((w[7], w[8]))) for w in rows],
        )
