"""`/mcp` on a real server process, driven by the official `mcp` client over streamable HTTP."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.test_api_models import MISSING_KEY

TOOLS = {
    "list_bots",
    "start_session",
    "start_arena",
    "session_status",
    "approve_order",
    "reject_order",
    "bot_trades",
    "bot_portfolio",
}
ONE_DAY = {"start": "2012-03-01", "end": "2012-03-01", "symbols": ["AAPL"]}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
COUNT_THREADS = "SELECT count(*) AS n FROM threads WHERE model_id = %s"


@asynccontextmanager
async def connected(server: Any, key: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with the server, authenticated with `key`."""
    async with (
        httpx2.AsyncClient(headers={"x-api-key": key}, timeout=30) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        initialized = await session.initialize()
        assert initialized.server_info.name == "tradegraph"
        assert "list_bots" in (initialized.instructions or ""), "instructions say how to begin"
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """A tool's structured answer; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    answer = result.structured_content
    return answer["result"] if isinstance(answer, dict) and set(answer) == {"result"} else answer


async def refusal(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a tool error (fails the test when the tool succeeds)."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(c.text for c in result.content if c.type == "text")


async def wait_for(session: ClientSession, thread_id: str, state: str) -> dict[str, Any]:
    """Poll session_status until the session reaches `state`."""
    for _ in range(300):
        status = await call(session, "session_status", thread_id=thread_id)
        if status["state"] == state:
            return status
        assert status["state"] in ("pending", "running", "paused", "done"), status
        await asyncio.sleep(0.1)
    raise AssertionError(f"session {thread_id} never reached {state}: {status}")


async def test_without_a_valid_key_mcp_answers_401_before_anything(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = {"accept": "application/json, text/event-stream"}
        missing = await http.post("/mcp", json=INITIALIZE, headers=headers)
        wrong = await http.post("/mcp", json=INITIALIZE, headers={**headers, "x-api-key": "tg_nope"})
        bearer = await http.post("/mcp", json=INITIALIZE, headers={**headers, "authorization": "Bearer x"})
    assert (missing.status_code, missing.json()) == (401, {"detail": MISSING_KEY})
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "invalid API key"})
    assert bearer.status_code == 401


async def test_an_agent_starts_a_session_approves_its_order_and_reads_the_fill(
    server, make_user, make_model, pool
):
    owner, stranger = await make_user(), await make_user()
    model = await make_model(owner=owner, approval_notional=Decimal(1000))
    async with connected(server, owner["api_key"]) as mine, connected(server, stranger["api_key"]) as theirs:
        listed = (await mine.list_tools()).tools
        assert {t.name for t in listed} == TOOLS
        for tool in listed:
            assert tool.description and len(tool.description) > 100, tool.name
            properties = tool.input_schema.get("properties", {})
            assert "ctx" not in properties and not {"user", "user_id", "api_key"} & set(properties)
            assert all(p.get("description") for p in properties.values()), (tool.name, properties)

        [bot] = await call(mine, "list_bots")
        as_text = (await mine.call_tool("list_bots", {})).content
        assert model["signature"] in as_text[0].text, "a client that reads only text sees the bots too"
        assert (bot["id"], bot["signature"]) == (model["id"], model["signature"])
        assert {"equity", "total_return", "trades"} <= set(bot["summary"])
        assert Decimal(bot["limits"]["approval_notional"]) == 1000

        bad = await refusal(mine, "start_session", model_id=model["id"], **{**ONE_DAY, "symbols": ["NOPE"]})
        assert "NOPE" in bad
        async with pool.connection() as conn:
            count = await (await conn.execute(COUNT_THREADS, (model["id"],))).fetchone()
        assert count["n"] == 0, "a refused session creates no thread"

        started = await call(mine, "start_session", model_id=model["id"], **ONE_DAY)
        thread_id = started["thread_id"]
        assert started["run_id"] and started["bars_total"] == 1
        paused = await wait_for(mine, thread_id, "paused")
        order = paused["pending_approval"]
        assert (order["symbol"], order["side"], order["limit"]) == ("AAPL", "buy", "approval_notional")
        assert Decimal(order["notional"]) > 1000 and order["quantity"] > 2
        assert paused["portfolio"]["cash"] == "100000.0000" and paused["bars_total"] == 1

        # Another user's key sees none of it, and cannot answer the approval.
        assert await call(theirs, "list_bots") == []
        assert "not found" in await refusal(theirs, "session_status", thread_id=thread_id)
        assert "not found" in await refusal(theirs, "approve_order", thread_id=thread_id)
        assert "not found" in await refusal(theirs, "reject_order", thread_id=thread_id)
        assert "not found" in await refusal(theirs, "bot_trades", model_id=model["id"])
        assert "not found" in await refusal(theirs, "bot_portfolio", model_id=model["id"])
        assert "not found" in await refusal(theirs, "start_session", model_id=model["id"], **ONE_DAY)
        assert (await call(mine, "session_status", thread_id=thread_id))["state"] == "paused"

        too_many = await refusal(mine, "approve_order", thread_id=thread_id, quantity=order["quantity"] + 1)
        assert "quantity must be a whole number from 1" in too_many
        approved = await call(mine, "approve_order", thread_id=thread_id, quantity=2)
        assert approved["answer"] == {"action": "approve", "quantity": 2}
        done = await wait_for(mine, thread_id, "done")
        assert done["pending_approval"] is None and done["bars_done"] == done["bars_total"] == 1
        assert done["portfolio"]["positions"] == {"AAPL": 2}
        assert "not paused for approval" in await refusal(mine, "reject_order", thread_id=thread_id)

        trades = await call(mine, "bot_trades", model_id=model["id"], status="filled")
        [fill] = trades["items"]
        assert (fill["symbol"], fill["side"], fill["filled_quantity"]) == ("AAPL", "buy", 2)
        assert trades["total"] == 1
        portfolio = await call(mine, "bot_portfolio", model_id=model["id"])
        assert [(p["symbol"], p["quantity"]) for p in portfolio["positions"]] == [("AAPL", 2)]


async def test_an_arena_of_the_callers_own_bots(server, make_user, make_model):
    owner, stranger = await make_user(), await make_user()
    first, second = await make_model(owner=owner), await make_model(owner=owner)
    theirs = await make_model(owner=stranger)
    async with connected(server, owner["api_key"]) as mine:
        refused = await refusal(mine, "start_arena", model_ids=[first["id"], theirs["id"]], **ONE_DAY)
        assert f"model {theirs['id']} not found" in refused
        arena = await call(mine, "start_arena", model_ids=[first["id"], second["id"]], **ONE_DAY)
        assert [t["model_id"] for t in arena["threads"]] == [first["id"], second["id"]]
        for entry in arena["threads"]:
            status = await wait_for(mine, entry["thread_id"], "done")
            assert status["model_id"] == entry["model_id"] and status["run"]["run_id"] == entry["run_id"]
