"""More of the protocol: forks, disconnect cancellation, if_not_exists, LLM token streaming."""

import asyncio
import json
import uuid

import httpx
from langgraph_sdk import get_client

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.openai_stub import OpenAIStub, trading_policy
from tests.support.server import ServerProcess
from tests.test_api_protocol import ONE_WEEK, TWO_DAYS


async def test_fork_a_checkpoint_with_copy(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    thread_id = (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]
    await client.runs.wait(thread_id, "trading_session", input=ONE_WEEK)
    history = await client.threads.get_history(thread_id, limit=50)
    before_execute = next(h for h in history if h["next"] == ["execute"])
    forked = await client.threads.update_state(
        thread_id, None, as_node="__copy__", checkpoint_id=before_execute["checkpoint"]["checkpoint_id"]
    )
    head = await client.threads.get_state(thread_id)
    assert head["checkpoint"]["checkpoint_id"] == forked["checkpoint"]["checkpoint_id"]
    assert head["metadata"]["source"] == "fork" and head["next"] == ["execute"]
    assert head["values"]["clock"] == before_execute["values"]["clock"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"


async def test_on_disconnect_cancel_interrupts_the_run(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = get_client(url=server.url, api_key=owner["api_key"])
    thread_id = (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]
    body = {
        "assistant_id": "trading_session",
        "input": TWO_DAYS,
        "stream_mode": ["custom"],
        "on_disconnect": "cancel",
    }
    async with (
        httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}, timeout=30) as http,
        http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response,
    ):
        run_id = response.headers["content-location"].rsplit("/", 1)[-1]
        lines = 0
        async for _line in response.aiter_lines():
            lines += 1
            if lines > 20:
                break  # the client goes away mid-session
    for _ in range(100):
        run = await client.runs.get(thread_id, run_id)
        if run["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert run["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["tasks"] and state["values"]["bar_index"] < state["values"]["bars_total"] - 1
    for _ in range(100):  # the worker settles the thread once its task has stopped
        if (thread := await client.threads.get(thread_id))["status"] != "busy":
            break
        await asyncio.sleep(0.1)
    assert thread["status"] == "interrupted"
    resumed = await client.runs.wait(thread_id, "trading_session", input=None)  # continue, never restart
    assert resumed.get("done") is True
    assert resumed["bar_index"] == resumed["bars_total"] - 1


async def test_if_not_exists_create_explains_that_sessions_need_a_model(server, make_user):
    owner = await make_user()
    missing = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}) as http:
        response = await http.post(
            f"/threads/{missing}/runs",
            json={"assistant_id": "trading_session", "input": ONE_WEEK, "if_not_exists": "create"},
        )
        assert response.status_code == 422 and "metadata.model_id" in response.json()["detail"]
        assert (await http.get(f"/threads/{missing}")).status_code == 404, "nothing was created"


async def test_llm_session_streams_tokens_as_messages_tuples_and_debug(own_database_url):
    # Its own database: the shared test server's workers (without an LLM endpoint) must not take the run.
    key, model = await owner_and_model(own_database_url)
    with OpenAIStub(trading_policy(symbol="IBM", quantity=4)) as stub:
        env = {
            "OPENAI_API_KEY": "test",
            "OPENAI_BASE_URL": stub.base_url,
            "TRADEGRAPH_LLM_MODEL": "gpt-4o-mini",
        }
        server = ServerProcess(
            own_database_url, ARTIFACTS / "server-llm.log", workers=1, extra_env=env
        ).wait_ready()
        try:
            client = get_client(url=server.url, api_key=key)
            thread_id = (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]
            session = {**ONE_WEEK, "symbols": ["IBM"], "end": "2012-01-03", "decider": "llm"}
            parts = [
                p
                async for p in client.runs.stream(
                    thread_id,
                    "trading_session",
                    input=session,
                    stream_mode=["messages-tuple", "custom", "debug"],
                )
            ]
        finally:
            server.stop()
    tokens = [p.data for p in parts if p.event == "messages"]
    ai_chunks = [(chunk, meta) for chunk, meta in tokens if chunk["type"] == "AIMessageChunk"]
    assert ai_chunks and all(meta["langgraph_node"] == "decide" for _, meta in ai_chunks)
    assert "bought 4 IBM" in "".join(
        chunk["content"] for chunk, _ in tokens if isinstance(chunk["content"], str)
    )
    assert any(call["name"] == "buy" for chunk, _ in tokens for call in chunk.get("tool_call_chunks", []))
    debug_types = {p.data["type"] for p in parts if p.event == "debug"}
    assert {"checkpoint", "task", "task_result"} <= debug_types
    fills = [p.data for p in parts if p.event == "custom" and p.data["type"] == "fill"]
    assert [(f["symbol"], f["quantity"], f["status"]) for f in fills] == [("IBM", 4, "filled")]
    assert json.loads(json.dumps(stub.requests[0]["tools"]))  # the model saw the real tool schema
