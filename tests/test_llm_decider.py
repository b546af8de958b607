"""The llm decider: tool calls only propose, bad input is rejected with reasons, failures are recorded."""

import uuid
from decimal import Decimal

from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from graph.context import SessionContext
from tests.support.fake_chat import ScriptedChatModel, tool_call
from tests.support.ledger_checks import assert_reconciles
from tests.support.openai_stub import OpenAIStub, sequence, text, tool_calls, trading_policy
from tests.support.sessions import events, input_for, run_session, state_of
from tradegraph.accounts import BotTerms, create_model, create_user
from tradegraph.limits import RiskLimits
from tradegraph.terms import Shorting

ONE_DAY = {"symbols": ["AAPL", "MSFT"], "start": "2012-03-01", "end": "2012-03-01", "decider": "llm"}
FILLS = "SELECT symbol, side, quantity, model_id FROM fills WHERE model_id = %s"
ORDERS = "SELECT * FROM orders WHERE model_id = %s ORDER BY id"
POSITIONS = "SELECT symbol, quantity FROM positions WHERE model_id = %s AND quantity <> 0"
CLOSE = "SELECT close FROM daily_bars WHERE symbol = %s AND day = %s"


async def fills_of(pool, model_id):
    async with pool.connection() as conn:
        return [dict(r) for r in await (await conn.execute(FILLS, (model_id,))).fetchall()]


async def test_bad_tool_input_is_rejected_with_reasons_and_nothing_is_written(pool, make_model):
    model = await make_model()
    calls = [
        tool_call("buy", {"symbol": "AAPL", "quantity": 5}, "c1"),
        tool_call("buy", {"symbol": "TSLA", "quantity": 1}, "c2"),
        tool_call("sell", {"symbol": "AAPL", "quantity": -3}, "c3"),
        tool_call("buy", {"symbol": "MSFT", "quantity": 2.5}, "c4"),
        tool_call("buy", {"symbol": "MSFT", "quantity": 10**12}, "c5"),
        tool_call("sell", {"symbol": "MSFT", "quantity": 1}, "c6"),
    ]
    chat = ScriptedChatModel(replies=[AIMessage("", tool_calls=calls), AIMessage("done for today")])
    thread_id, parts = await run_session(
        pool, input_for(model, **ONE_DAY), context=SessionContext(pool=pool, chat_model=chat)
    )
    verdicts = {v["proposal_id"].split(":")[1]: v for v in events(parts, "verdict")}
    assert verdicts["c1"]["status"] == "approved"
    assert (verdicts["c2"]["rule"], verdicts["c2"]["reason"]) == (
        "symbol",
        "'TSLA' is not traded in this session (symbols: AAPL, MSFT)",
    )
    assert (verdicts["c3"]["rule"], verdicts["c3"]["reason"]) == (
        "quantity",
        "quantity must be positive, got -3",
    )
    assert (verdicts["c4"]["rule"], verdicts["c4"]["reason"]) == (
        "quantity",
        "quantity must be a whole number of shares, got 2.5",
    )
    assert verdicts["c5"]["rule"] == "quantity" and "maximum" in verdicts["c5"]["reason"]
    assert (verdicts["c6"]["rule"], verdicts["c6"]["reason"]) == (
        "no_short_selling",
        "cannot sell 1 MSFT: 0 held and short selling is off",
    )
    assert [(f["symbol"], f["side"], f["quantity"]) for f in await fills_of(pool, model["id"])] == [
        ("AAPL", "buy", 5)
    ]
    ledger = await assert_reconciles(pool, model["id"])
    assert ledger["positions"] == {"AAPL": 5}
    state = (await state_of(pool, thread_id)).values
    assert state["decision"] == {"decider": "llm", "status": "ok", "reason": "done for today"}


async def test_injected_identity_is_hidden_from_the_model_and_cannot_be_spoofed(pool, make_model):
    mine, victim = await make_model(), await make_model()
    spoof = tool_call(
        "buy",
        {"symbol": "AAPL", "quantity": 1, "model_id": victim["id"], "signature": victim["signature"]},
        "s1",
    )
    chat = ScriptedChatModel(replies=[AIMessage("", tool_calls=[spoof]), AIMessage("ok")])
    await run_session(pool, input_for(mine, **ONE_DAY), context=SessionContext(pool=pool, chat_model=chat))
    for bound in chat.bound_tools:
        properties = convert_to_openai_tool(bound)["function"]["parameters"].get("properties", {})
        assert not {"runtime", "state", "model_id", "signature"} & set(properties)
    assert [f["model_id"] for f in await fills_of(pool, mine["id"])] == [mine["id"]]
    assert await fills_of(pool, victim["id"]) == []


async def test_a_failing_model_is_a_recorded_failed_decision_not_a_silent_hold(pool, make_model):
    model = await make_model()
    chat = ScriptedChatModel(replies=[ConnectionError("upstream is down")])
    thread_id, parts = await run_session(
        pool,
        input_for(model, **{**ONE_DAY, "end": "2012-03-02"}),
        context=SessionContext(pool=pool, chat_model=chat),
    )
    decisions = events(parts, "decision")
    assert len(decisions) == 2 and all(d["status"] == "failed" for d in decisions)
    assert "ConnectionError: upstream is down" in decisions[0]["reason"]
    state = (await state_of(pool, thread_id)).values
    assert state["done"] and state["decision"]["status"] == "failed"


async def test_the_tool_loop_is_bounded(pool, make_model):
    model = await make_model()
    chat = ScriptedChatModel(
        replies=[
            lambda sent: AIMessage(
                "", tool_calls=[tool_call("get_price", {"symbol": "AAPL"}, f"p{len(sent)}")]
            )
        ]
    )
    thread_id, _ = await run_session(
        pool, input_for(model, **ONE_DAY), context=SessionContext(pool=pool, chat_model=chat)
    )
    assert len(chat.calls) == 4
    decision = (await state_of(pool, thread_id)).values["decision"]
    assert decision["status"] == "failed" and "tool loop stopped after 4 model calls" in decision["reason"]


async def test_tools_read_prices_at_the_session_clock(pool, make_model):
    model = await make_model()
    chat = ScriptedChatModel(
        replies=[
            AIMessage(
                "",
                tool_calls=[
                    tool_call("get_price_history", {"symbol": "AAPL", "bars": 100}, "h"),
                    tool_call("get_portfolio", {}, "p"),
                ],
            ),
            AIMessage("looked"),
        ]
    )
    await run_session(pool, input_for(model, **ONE_DAY), context=SessionContext(pool=pool, chat_model=chat))
    tool_results = [m for m in chat.calls[1] if m.type == "tool"]
    history = next(m for m in tool_results if m.name == "get_price_history")
    assert '"as_of": "2012-03-01T16:00:00"' in history.content
    assert "2012-03-02" not in history.content  # nothing after the clock
    portfolio = next(m for m in tool_results if m.name == "get_portfolio")
    assert model["signature"] in portfolio.content


async def test_llm_decider_over_the_real_openai_wire_format(pool, make_model, openai_env):
    model = await make_model()
    with OpenAIStub(trading_policy(symbol="MSFT", quantity=7)) as stub:
        openai_env(stub.base_url)
        thread_id, parts = await run_session(pool, input_for(model, **ONE_DAY))
    assert [f["symbol"] for f in await fills_of(pool, model["id"])] == ["MSFT"]
    assert [e["quantity"] for e in events(parts, "fill")] == [7]
    first = stub.requests[0]
    assert first["model"] == "gpt-4o-mini"
    sent_tools = {t["function"]["name"]: t["function"]["parameters"] for t in first["tools"]}
    assert set(sent_tools) == {
        "get_price",
        "get_price_history",
        "get_portfolio",
        "add",
        "multiply",
        "buy",
        "sell",
        "short",
        "cover",
        "cancel_order",
        "get_open_orders",
        "remember",
        "recall",
    }
    assert {"symbol", "quantity", "order_type", "limit_price", "take_profit", "stop_loss"} <= set(
        sent_tools["buy"]["properties"]
    )
    assert "runtime" not in sent_tools["buy"]["properties"]  # identity is injected, never asked for
    assert (await state_of(pool, thread_id)).values["decision"]["reason"] == "bought 7 MSFT"
    assert Decimal((await state_of(pool, thread_id)).values["portfolio"]["cash"]) < Decimal(
        model["initial_cash"]
    )


async def test_the_llm_places_a_bracket_and_a_short_through_the_tools(pool, openai_env):
    async with pool.connection() as conn:
        user, _ = await create_user(conn, name=f"bracket-{uuid.uuid4().hex[:8]}")
        model = await create_model(
            conn,
            user_id=user.id,
            name="llm shorts",
            signature=f"ls-{uuid.uuid4().hex[:8]}",
            initial_cash=Decimal(100000),
            limits=RiskLimits(),
            terms=BotTerms(shorting=Shorting(enabled=True)),
        )
        close = (await (await conn.execute(CLOSE, ("AAPL", "2012-03-01"))).fetchone())["close"]
    take_profit, stop_loss = (
        (close * Decimal("1.05")).quantize(Decimal("0.01")),
        (close * Decimal("0.95")).quantize(Decimal("0.01")),
    )
    bracket = {"symbol": "AAPL", "quantity": 10, "take_profit": str(take_profit), "stop_loss": str(stop_loss)}
    calls = tool_calls([("buy", bracket), ("short", {"symbol": "MSFT", "quantity": 100})])
    with OpenAIStub(sequence(calls, text("a bracket on AAPL and a short in MSFT"))) as stub:
        openai_env(stub.base_url)
        thread_id, parts = await run_session(pool, input_for(model, **ONE_DAY))
    async with pool.connection() as conn:
        orders = [dict(r) for r in await (await conn.execute(ORDERS, (model["id"],))).fetchall()]
        held = {
            r["symbol"]: r["quantity"]
            for r in await (await conn.execute(POSITIONS, (model["id"],))).fetchall()
        }
    entry, short = (o for o in orders if o["leg"] is None)
    exits = [o for o in orders if o["leg"] is not None]
    assert (entry["symbol"], entry["side"], entry["status"], entry["take_profit"], entry["stop_loss"]) == (
        "AAPL",
        "buy",
        "filled",
        take_profit,
        stop_loss,
    )
    assert (short["symbol"], short["side"], short["status"], short["filled_quantity"]) == (
        "MSFT",
        "sell",
        "filled",
        100,
    )
    assert sorted((e["leg"], e["side"], e["parent_id"]) for e in exits) == [
        ("stop_loss", "sell", entry["id"]),
        ("take_profit", "sell", entry["id"]),
    ]
    # A one-day session: its exits were placed when the entry filled and closed when the session ended.
    assert {e["status"] for e in exits} == {"cancelled"}
    assert held == {"AAPL": 10, "MSFT": -100}
    assert (await state_of(pool, thread_id)).values["portfolio"]["positions"] == {"AAPL": 10, "MSFT": -100}
    await assert_reconciles(pool, model["id"])
