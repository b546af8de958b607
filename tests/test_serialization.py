"""What the wire gets for the values graphs put in state and streams (server/serialization.py)."""

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from langchain_core.messages import AIMessage
from langgraph.types import Interrupt
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from server.serialization import dumps, to_jsonable
from tradegraph.database import dump_json, load_json, make_pool


class Side(StrEnum):
    BUY = "buy"


@dataclasses.dataclass
class Fill:
    price: Decimal
    at: date


class Order(BaseModel):
    quantity: int
    side: str


def test_values_become_plain_json_at_any_depth() -> None:
    value = {
        "cash": Decimal("100023.10"),
        "flags": [True, False, None],
        "count": 3,
        "ratio": 0.5,
        1: "a key that is not text",
        "at": datetime(2012, 1, 3, 16, 0),
        "id": UUID(int=7),
        "pair": ("AAPL", 3),
        "fills": [Fill(Decimal("12.5"), date(2012, 1, 3))],
        "order": Order(quantity=2, side="buy"),
        "side": Side.BUY,
        "pending": Interrupt(value={"notional": Decimal("1500")}, id="i-1"),
    }
    assert to_jsonable(value) == {
        "cash": "100023.10",
        "flags": [True, False, None],
        "count": 3,
        "ratio": 0.5,
        "1": "a key that is not text",
        "at": "2012-01-03T16:00:00",
        "id": "00000000-0000-0000-0000-000000000007",
        "pair": ["AAPL", 3],
        "fills": [{"price": "12.5", "at": "2012-01-03"}],
        "order": {"quantity": 2, "side": "buy"},
        "side": Side.BUY,
        "pending": {"value": {"notional": "1500"}, "id": "i-1"},
    }
    assert json.loads(dumps(value))["side"] == "buy"


def test_messages_keep_their_fields_and_unknown_objects_their_repr() -> None:
    message = to_jsonable(AIMessage(content="buy 3 AAPL", id="m-1"))
    assert (message["type"], message["content"], message["id"]) == ("ai", "buy 3 AAPL", "m-1")
    assert to_jsonable(object) == repr(object)
    assert type(to_jsonable(True)) is bool and type(to_jsonable(3)) is int


def test_integers_beyond_64_bits_take_the_standard_librarys_way() -> None:
    """orjson refuses them; the event data and the database parameters still get exact JSON."""
    value = {"shares": 2**70, 1: "a key that is not text"}
    assert json.loads(dumps(value)) == {"shares": 2**70, "1": "a key that is not text"}
    assert json.loads(dump_json(value)) == {"shares": 2**70, "1": "a key that is not text"}
    assert dump_json({"n": 3, 2: [1.5, None]}) == b'{"n":3,"2":[1.5,null]}'


async def test_a_pooled_connection_stores_such_json_exactly(database_url: str) -> None:
    """The app's connections dump `jsonb` parameters with `dump_json` and load them with `load_json`:
    an integer orjson refuses (or would load as a float) is stored and read back whole."""
    pool = make_pool(database_url, max_size=1)
    await pool.open()
    try:
        async with pool.connection() as conn:
            value = Jsonb({"shares": 2**70 + 1, "price": "12.50"})
            row = await (await conn.execute("SELECT %s::jsonb AS v", (value,))).fetchone()
    finally:
        await pool.close()
    assert row is not None and row["v"] == {"shares": 2**70 + 1, "price": "12.50"}
    assert type(row["v"]["shares"]) is int
    assert load_json(b'{"n":3,"id":"1f0"}') == {"n": 3, "id": "1f0"}
