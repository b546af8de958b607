"""Quiet bars in one step (`nodes/hold.py`): a session that holds through its quiet bars streams,
books and marks exactly what the same session taken bar by bar through decide, risk_check and
execute does, in far fewer steps."""

from typing import Any

import pytest

import graph.routes
from graph.builder import persistent_graph
from graph.config import thread_config
from tests.support.ledger_checks import assert_reconciles
from tests.support.sessions import input_for, run_session, state_of

EQUITY_POINTS = "SELECT bar_time, equity, benchmark FROM equity_points WHERE thread_id = %s ORDER BY bar_time"
DROPPED = ("client_order_id", "order_id", "id")
"""Per-thread or per-row identifiers: the two sessions run on different threads."""


def comparable(parts: list[Any]) -> list[dict[str, Any]]:
    """The custom events in order, without the identifiers that name the thread or a row."""
    return [{k: v for k, v in p["data"].items() if k not in DROPPED} for p in parts if p["type"] == "custom"]


async def curve(pool: Any, thread_id: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        rows = await (await conn.execute(EQUITY_POINTS, (thread_id,))).fetchall()
    return [(r["bar_time"], r["equity"], r["benchmark"]) for r in rows]


async def steps(pool: Any, thread_id: str) -> int:
    return len([s async for s in persistent_graph(pool).aget_state_history(thread_config(thread_id))])


@pytest.mark.parametrize(
    ("session", "step_share"),
    [
        ({"mode": "daily", "start": "2012-01-03", "end": "2012-06-29"}, 1 / 3),
        # minute bars cross their averages often: fewer bars are quiet, and fewer steps are saved
        ({"mode": "intraday", "start": "2012-03-01", "end": "2012-03-01"}, 0.95),
    ],
    ids=["daily-half-year", "intraday-day"],
)
async def test_holding_streams_books_and_marks_what_bar_by_bar_does(
    pool, make_model, monkeypatch, session, step_share
):
    held_model, stepped_model = await make_model(), await make_model()
    held, held_parts = await run_session(pool, input_for(held_model, **session))
    monkeypatch.setattr(graph.routes, "may_hold", lambda state: False)
    stepped, stepped_parts = await run_session(pool, input_for(stepped_model, **session))

    assert comparable(held_parts) == comparable(stepped_parts)
    kinds = {e["type"] for e in comparable(held_parts)}
    assert {"decision", "verdict", "fill", "equity"} <= kinds, "the window has trades and quiet bars"
    assert await curve(pool, held) == await curve(pool, stepped)
    held_ledger = await assert_reconciles(pool, held_model["id"])
    stepped_ledger = await assert_reconciles(pool, stepped_model["id"])
    assert (held_ledger["cash"], held_ledger["positions"]) == (
        stepped_ledger["cash"],
        stepped_ledger["positions"],
    )
    held_state, stepped_state = (await state_of(pool, held)).values, (await state_of(pool, stepped)).values
    for field in ("clock", "bar_index", "day_open_equity", "portfolio", "decision", "done"):
        assert held_state[field] == stepped_state[field], field
    bars = sum(1 for e in comparable(held_parts) if e["type"] == "equity")
    held_steps, stepped_steps = await steps(pool, held), await steps(pool, stepped)
    assert stepped_steps >= 3 * bars, "bar by bar: decide, risk_check and execute each bar"
    assert held_steps < stepped_steps * step_share, f"{held_steps} steps held, {stepped_steps} bar by bar"
