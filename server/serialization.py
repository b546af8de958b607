"""JSON for the wire: graph state, LangChain messages, interrupts, Decimals and datetimes."""

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.messages import BaseMessage
from langgraph.types import Interrupt
from pydantic import BaseModel

from tradegraph.database import dump_json

PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types that are JSON values as they are (exactly these: a subclass takes the long way)."""


def to_jsonable(value: Any) -> Any:
    """Convert what graphs put in state and streams into plain JSON values."""
    if type(value) in PLAIN:  # most leaves of an event: checked first, with one set lookup
        return value
    if isinstance(value, dict):  # containers before the costlier class checks below
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseMessage):
        return value.model_dump()
    if isinstance(value, Interrupt):
        return {"value": to_jsonable(value.value), "id": value.id}
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def dumps(value: Any) -> str:
    """Compact JSON text of any state or event value (each SSE event's data), through orjson
    (`dump_json`: the standard library's encoder was ~17% of the CPU of a stream's task with 100
    sessions streaming)."""
    return dump_json(to_jsonable(value)).decode()
