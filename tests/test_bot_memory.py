"""Bot memory on a real Postgres: remember/recall across sessions through the OpenAI wire format, the
session-end reflection, and namespaces that no tool argument can move."""

import json
from typing import Any

from psycopg_pool import AsyncConnectionPool

from graph.builder import persistent_graph
from graph.config import run_config
from graph.context import SessionContext
from tests.support.openai_stub import OpenAIStub, sequence, text, tool_calls
from tests.support.sessions import input_for, run_session, state_of
from tradegraph.namespaces import bot_memories, private

ONE_DAY = {"symbols": ["AAPL", "MSFT"], "start": "2012-03-01", "end": "2012-03-01", "decider": "llm"}
NEXT_DAY = {**ONE_DAY, "start": "2012-03-02", "end": "2012-03-02"}
NOTE = "AAPL closed near its high on 2012-03-01: wait for a pullback before buying"
LESSON = "Holding cash was safe but missed the AAPL rally; buy earlier on strength."
STORED = "SELECT prefix, key, value FROM store WHERE value::text LIKE %s ORDER BY prefix, key"
BOT_ITEMS = "SELECT key, value FROM store WHERE prefix = %s"
REFLECTIONS = "SELECT key, value FROM store WHERE prefix = %s AND key LIKE 'reflection:%%'"


def prefix_of(model: dict[str, Any]) -> str:
    """How the store keys the bot's memory namespace (labels joined by '.')."""
    return ".".join(private(model["user_id"], bot_memories(model["id"])))


def tool_results(stub: OpenAIStub, name: str) -> list[str]:
    """Contents of the tool messages the stub was sent that answer calls of `name`."""
    contents: list[str] = []
    for request in stub.requests:
        names = {
            call["id"]: call["function"]["name"]
            for m in request["messages"]
            for call in m.get("tool_calls") or []
        }
        contents += [
            m["content"]
            for m in request["messages"]
            if m["role"] == "tool" and names.get(m["tool_call_id"]) == name and m["content"] not in contents
        ]
    return contents


async def stored(pool: AsyncConnectionPool, needle: str) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return [dict(r) for r in await (await conn.execute(STORED, (f"%{needle}%",))).fetchall()]


async def test_an_llm_bot_recalls_its_note_and_its_reflection_in_its_next_session(
    pool: AsyncConnectionPool, make_model: Any, openai_env: Any
) -> None:
    model = await make_model()
    first = sequence(tool_calls([("remember", {"note": NOTE})]), text("noted for later"), text(LESSON))
    with OpenAIStub(first) as stub:
        openai_env(stub.base_url)
        thread_one, _ = await run_session(pool, input_for(model, **ONE_DAY))
        reflection = (await state_of(pool, thread_one)).values["reflection"]
        assert reflection.startswith(
            "Session 2012-03-01 to 2012-03-01 (daily, llm decider) on AAPL, MSFT: 0 fills"
        )
        assert reflection.endswith(LESSON), "the session's own model said what worked"
        assert stub.requests[-1]["messages"][-1]["content"].startswith("The session has ended.")
        assert "tools" not in stub.requests[-1], "the reflection is text only"

        seen = len(stub.requests)
        stub.policy = sequence(
            tool_calls([("recall", {"query": "aapl PULLBACK"})]),
            tool_calls([("recall", {"query": "reflection 2012-03-01"})]),
            text("nothing to do today"),
            text("Another quiet day."),
        )
        await run_session(pool, input_for(model, **NEXT_DAY))
        second = stub.requests[seen:]
    assert "Your newest memories: [reflection] Session 2012-03-01" in second[0]["messages"][-1]["content"]
    note_found, reflection_found = (json.loads(c) for c in tool_results(stub, "recall"))
    assert [m["text"] for m in note_found["memories"]] == [NOTE]
    assert note_found["memories"][0]["kind"] == "note"
    assert note_found["memories"][0]["session_time"] == "2012-03-01T16:00:00"
    assert [(m["kind"], m["text"]) for m in reflection_found["memories"]] == [("reflection", reflection)]
    assert [r["prefix"] for r in await stored(pool, NOTE)] == [prefix_of(model)]
    async with pool.connection() as conn:
        rows = await (await conn.execute(BOT_ITEMS, (prefix_of(model),))).fetchall()
    assert sorted(r["value"]["kind"] for r in rows) == ["note", "reflection", "reflection"]


async def test_a_spoofed_namespace_argument_changes_nothing_and_other_users_bots_recall_nothing(
    pool: AsyncConnectionPool, make_model: Any, openai_env: Any
) -> None:
    mine, theirs = await make_model(), await make_model()
    secret = "zebra-7 secret plan for MSFT"
    elsewhere = ["users", "999", "bots", str(theirs["id"]), "memories"]
    spoof = tool_calls(
        [
            ("remember", {"note": secret, "namespace": elsewhere}),
            ("remember", {"note": secret, "namespace": ["users", str(theirs["user_id"])], "key": "x"}),
        ]
    )
    with OpenAIStub(sequence(spoof, text("remembered"))) as stub:
        openai_env(stub.base_url)
        await run_session(pool, input_for(mine, **ONE_DAY))
        rows = await stored(pool, "zebra-7")
        assert len(rows) == 2 and all(r["prefix"] == prefix_of(mine) for r in rows), rows
        assert all(
            r["prefix"].startswith(f"users.{mine['user_id']}.bots.{mine['id']}.memories") for r in rows
        )
        assert all(r["value"]["text"] == secret for r in rows)

        seen = len(stub.requests)
        stub.policy = sequence(
            tool_calls([("recall", {"query": "zebra-7", "namespace": prefix_of(mine).split(".")})]),
            tool_calls([("recall", {"query": ""})]),
            text("nothing remembered"),
        )
        await run_session(pool, input_for(theirs, **ONE_DAY))
        answers = [json.loads(c) for c in tool_results(stub, "recall")]
    assert stub.requests[seen:], "the other bot's session asked the model"
    assert answers[0] == {"query": "zebra-7", "memories": []}
    assert answers[1]["query"] == "" and answers[1]["memories"] == []  # its first session: nothing yet
    assert not any(secret in json.dumps(r["messages"]) for r in stub.requests[seen:])
    assert len(await stored(pool, "zebra-7")) == 2


async def test_the_rule_decider_writes_a_deterministic_reflection_once(
    pool: AsyncConnectionPool, make_model: Any
) -> None:
    one, two = await make_model(), await make_model()
    thread_one, _ = await run_session(pool, input_for(one))
    thread_two, _ = await run_session(pool, input_for(two))
    async with pool.connection() as conn:
        rows = [
            [dict(r) for r in await (await conn.execute(REFLECTIONS, (prefix_of(m),))).fetchall()]
            for m in (one, two)
        ]
        fills = (
            await (
                await conn.execute("SELECT count(*) AS n FROM fills WHERE model_id = %s", (one["id"],))
            ).fetchone()
        )["n"]
    [[reflection_one], [reflection_two]] = rows
    assert reflection_one["key"] == f"reflection:{thread_one}:1"
    text_one = reflection_one["value"]["text"]
    assert text_one == reflection_two["value"]["text"], "same bot settings, same market: same words"
    assert text_one.startswith(
        f"Session 2012-01-03 to 2012-03-30 (daily, rule decider) on AAPL, MSFT, IBM: {fills} fills ("
    )
    assert fills > 0 and " against buy-and-hold " in text_one
    assert "Trading worked: it beat buy-and-hold by" in text_one or "Trading did not pay" in text_one
    assert reflection_one["value"]["kind"] == "reflection"

    graph = persistent_graph(pool)
    history = [s async for s in graph.aget_state_history(run_config(thread_one, bars_total=1))]
    [before] = [s for s in history if s.next == ("reflect",)]
    async for _ in graph.astream(None, before.config, context=SessionContext(pool=pool)):
        pass  # replay the reflect node from its checkpoint
    async with pool.connection() as conn:
        again = [dict(r) for r in await (await conn.execute(REFLECTIONS, (prefix_of(one),))).fetchall()]
    assert [(r["key"], r["value"]["text"]) for r in again] == [(f"reflection:{thread_one}:1", text_one)]
