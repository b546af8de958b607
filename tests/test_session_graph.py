"""The session graph on a real Postgres: a whole session, approvals, replay, crash and restart."""

import asyncio
import json
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
from langgraph.types import Command

from graph import graph as studio_graph
from graph.builder import persistent_graph
from graph.config import run_config
from graph.context import SessionContext
from tests.support.ledger_checks import assert_reconciles
from tests.support.sessions import events, input_for, run_session, state_of
from tradegraph.settings import PROJECT_ROOT

COUNT_FILLS = "SELECT count(*) AS n FROM fills WHERE model_id = %s"
COUNT_ORDERS = "SELECT count(*) AS n FROM orders WHERE model_id = %s"


async def count(pool, sql, *params):
    async with pool.connection() as conn:
        return (await (await conn.execute(sql, params)).fetchone())["n"]


def test_studio_graph_has_the_three_trading_nodes():
    nodes = set(studio_graph.get_graph().nodes)
    assert {"decide", "risk_check", "execute"} <= nodes
    assert studio_graph.checkpointer is None
    config = json.loads((PROJECT_ROOT / "langgraph.json").read_text())
    assert config["graphs"] == {"trading_session": "./graph/__init__.py:graph"}


async def test_rule_session_trades_every_bar_and_the_ledger_reconciles(pool, make_model):
    model = await make_model()
    thread_id, parts = await run_session(pool, input_for(model), stream_mode=["custom", "values"])
    state = (await state_of(pool, thread_id)).values
    assert state["done"] and state["bar_index"] == state["bars_total"] - 1 == 61
    assert (state["model_id"], state["signature"]) == (model["id"], model["signature"])
    equity_events = events(parts, "equity")
    assert [e["bar_index"] for e in equity_events] == list(range(62))
    filled = [f for f in events(parts, "fill") if f["status"] == "filled"]
    assert filled, "the crossover strategy trades in this window"
    assert await count(pool, COUNT_FILLS, model["id"]) == len(filled)
    ledger = await assert_reconciles(pool, model["id"])
    assert state["portfolio"]["cash"] == str(ledger["cash"])
    assert state["portfolio"]["positions"] == ledger["positions"]
    # State does not grow with the session: per-bar fields hold one bar only.
    sizes = [len(json.dumps(p["data"], default=str)) for p in parts if p["type"] == "values"]
    assert max(sizes[len(sizes) // 2 :]) < 2 * max(sizes[: len(sizes) // 2])


async def test_approval_pauses_and_each_answer_is_applied(pool, make_model):
    model = await make_model(approval_notional=Decimal(1000))
    thread_id, _ = await run_session(pool, input_for(model, end="2012-01-03"))
    answers = {"AAPL": {"action": "approve", "quantity": 2}, "MSFT": {"action": "reject"}}
    asked = []
    while (snapshot := await state_of(pool, thread_id)).interrupts:
        [pending] = snapshot.interrupts  # one order at a time
        request = pending.value
        assert request["kind"] == "order_approval" and request["limit"] == "approval_notional"
        assert Decimal(request["notional"]) > 1000 and request["signature"] == model["signature"]
        assert await count(pool, COUNT_FILLS, model["id"]) == 0, "nothing fills while the bar is paused"
        asked.append(request)
        _, parts = await run_session(pool, Command(resume=answers[request["symbol"]]), thread_id=thread_id)
    assert [r["symbol"] for r in asked] == ["AAPL", "MSFT"]  # IBM has no crossover signal that day
    outcomes = {f["symbol"]: f for f in events(parts, "fill")}
    assert (outcomes["AAPL"]["status"], outcomes["AAPL"]["quantity"]) == ("filled", 2)
    assert outcomes["AAPL"]["reason"] == f"approved by reviewer at 2 shares (proposed {asked[0]['quantity']})"
    assert outcomes["AAPL"]["notional"] == str(Decimal(asked[0]["price"]) * 2)
    assert (outcomes["MSFT"]["status"], outcomes["MSFT"]["reason"]) == ("rejected", "rejected by reviewer")
    assert (await state_of(pool, thread_id)).values["done"]
    await assert_reconciles(pool, model["id"])


async def test_replaying_execute_fills_nothing_twice(pool, make_model):
    model = await make_model()
    thread_id, _ = await run_session(pool, input_for(model, end="2012-02-15"))
    fills_before = await count(pool, COUNT_FILLS, model["id"])
    orders_before = await count(pool, COUNT_ORDERS, model["id"])
    graph = persistent_graph(pool)
    history = [s async for s in graph.aget_state_history(run_config(thread_id, bars_total=1))]
    before_execute = [
        s
        for s in history
        if s.next == ("execute",) and any(v["status"] == "approved" for v in s.values["verdicts"])
    ]
    assert before_execute, "some bar executed an approved order"
    replay_from = before_execute[-1]
    replay_config = {**replay_from.config, "recursion_limit": 50}

    async def replay_execute():
        return [
            p
            async for p in graph.astream(
                None,
                replay_config,
                stream_mode="custom",
                version="v2",
                interrupt_after=["execute"],
                context=SessionContext(pool=pool),
            )
        ]

    for replayed in await asyncio.gather(replay_execute(), replay_execute()):  # even two at once
        fill_events = events(replayed, "fill")
        assert [f["client_order_id"] for f in fill_events] == [
            f"{thread_id}:1:{replay_from.values['bar_index']}:{slot}"
            for slot in range(len(replay_from.values["verdicts"]))
        ]
        assert all(f["replayed"] for f in fill_events)
        assert any(f["status"] == "filled" for f in fill_events)
    assert await count(pool, COUNT_FILLS, model["id"]) == fills_before
    assert await count(pool, COUNT_ORDERS, model["id"]) == orders_before
    await assert_reconciles(pool, model["id"])


async def test_two_models_of_two_users_trading_at_once_get_only_their_own_fills(pool, make_model):
    alice, bob = (
        await make_model(user="alice-" + str(id(pool))),
        await make_model(user="bob-" + str(id(pool)), cash="50000"),
    )
    (t_alice, p_alice), (t_bob, p_bob) = await asyncio.gather(
        run_session(pool, input_for(alice, symbols=["AAPL", "IBM"])),
        run_session(pool, input_for(bob, symbols=["MSFT", "IBM"])),
    )
    for model, thread_id, parts, symbols in (
        (alice, t_alice, p_alice, {"AAPL", "IBM"}),
        (bob, t_bob, p_bob, {"MSFT", "IBM"}),
    ):
        state = (await state_of(pool, thread_id)).values
        assert (state["model_id"], state["signature"]) == (model["id"], model["signature"])
        filled = [f for f in events(parts, "fill") if f["status"] == "filled"]
        async with pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT o.client_order_id, o.model_id, o.thread_id, f.symbol"
                    " FROM fills f JOIN orders o ON o.id = f.order_id WHERE f.model_id = %s",
                    (model["id"],),
                )
            ).fetchall()
        assert sorted(r["client_order_id"] for r in rows) == sorted(f["client_order_id"] for f in filled)
        assert {r["thread_id"] for r in rows} == {thread_id}
        assert {r["symbol"] for r in rows} <= symbols
        await assert_reconciles(pool, model["id"])


def run_process(job: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.session_process", json.dumps(job)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_crash_mid_execute_then_resume_keeps_identity_and_fills_once(pool, make_model, database_url):
    model = await make_model()
    thread_id = f"crash-{model['id']}"
    job = {"url": database_url, "thread_id": thread_id, "input": input_for(model), "kill_after_fills": 2}
    crashed = await asyncio.to_thread(run_process, job)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    fills_at_crash = await count(pool, COUNT_FILLS, model["id"])
    assert fills_at_crash >= 2
    interrupted = await state_of(pool, thread_id)
    assert interrupted.next, "the crash left the session unfinished"

    _, parts = await run_session(pool, None, thread_id=thread_id)  # resume: never resend the input
    state = (await state_of(pool, thread_id)).values
    assert state["done"] and (state["model_id"], state["signature"]) == (model["id"], model["signature"])
    replayed = [f for f in events(parts, "fill") if f["replayed"]]
    assert replayed, "the execute that crashed is replayed and finds its committed fills"
    new = [f for f in events(parts, "fill") if f["status"] == "filled" and not f["replayed"]]
    assert await count(pool, COUNT_FILLS, model["id"]) == fills_at_crash + len(new)
    await assert_reconciles(pool, model["id"])


async def test_session_paused_for_approval_resumes_in_a_new_process(pool, make_model, database_url):
    model = await make_model(approval_notional=Decimal(1000))
    thread_id = f"restart-{model['id']}"
    request = input_for(model, symbols=["AAPL"], end="2012-01-05")
    first = await asyncio.to_thread(
        run_process, {"url": database_url, "thread_id": thread_id, "input": request}
    )
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {"interrupted": True, "done": False}, (
        first.stderr
    )
    pending = (await state_of(pool, thread_id)).interrupts[0].value
    second = await asyncio.to_thread(
        run_process, {"url": database_url, "thread_id": thread_id, "resume": {"action": "approve"}}
    )
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {"interrupted": False, "done": True}, (
        second.stderr
    )
    async with pool.connection() as conn:
        fill = await (
            await conn.execute(
                "SELECT symbol, quantity, bar_time FROM fills WHERE model_id = %s ORDER BY id LIMIT 1",
                (model["id"],),
            )
        ).fetchone()
    assert (fill["symbol"], fill["quantity"], fill["bar_time"].isoformat()) == (
        pending["symbol"],
        pending["quantity"],
        pending["clock"],
    )


async def test_identity_cannot_be_claimed_for_another_model(pool, make_model):
    mine, theirs = await make_model(), await make_model()
    with pytest.raises(PermissionError, match="does not belong to model"):
        await run_session(pool, input_for(mine, signature=theirs["signature"]))
    assert await count(pool, COUNT_ORDERS, mine["id"]) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"symbols": ["TSLA"]}, "unknown symbols TSLA"),
        ({"start": "2012-13-01"}, "start must be a date"),
        ({"start": "2012-03-01", "end": "2012-02-01"}, "is after end"),
        ({"mode": "weekly"}, "mode must be one of"),
        ({"start": "1990-01-01", "end": "1990-02-01"}, "no data for"),
        ({"decider": "magic"}, "decider must be one of"),
    ],
)
async def test_bad_session_requests_fail_clearly_and_write_nothing(pool, make_model, overrides, message):
    model = await make_model()
    with pytest.raises(ValueError, match=message):
        await run_session(pool, input_for(model, **overrides))
    assert await count(pool, COUNT_ORDERS, model["id"]) == 0
