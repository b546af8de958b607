"""The LangGraph protocol over the real server, driven by the official langgraph-sdk client."""

import asyncio
import json
import uuid

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.support.ledger_checks import assert_reconciles

ONE_WEEK = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-01-06",
    "symbols": ["AAPL"],
    "decider": "rule",
}
YEAR = {"mode": "daily", "start": "2011-01-03", "end": "2011-12-30", "symbols": ["AAPL"], "decider": "rule"}
LONG = {  # 1,950 minute bars, ~12 s in-process: still running when the tests act on it
    "mode": "intraday",
    "start": "2012-03-01",
    "end": "2012-03-07",
    "symbols": ["AAPL", "MSFT", "IBM"],
    "decider": "rule",
}
TWO_DAYS = {**LONG, "end": "2012-03-02"}
"""780 minute bars: still running after its first events, for tests that then follow it to its end."""
APPROVE = {"action": "approve"}


def client_for(server, key):
    return get_client(url=server.url, api_key=key)


async def session_thread(client, model):
    return (await client.threads.create(metadata={"model_id": model["id"]}))["thread_id"]


async def wait_status(client, thread_id, run_id, wanted, within_seconds=30.0):
    deadline = asyncio.get_running_loop().time() + within_seconds
    while asyncio.get_running_loop().time() < deadline:
        run = await client.runs.get(thread_id, run_id)
        if run["status"] in wanted:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {wanted}: {run['status']}")


async def test_assistant_graph_and_schemas_for_studio(server, make_user):
    client = client_for(server, (await make_user())["api_key"])
    [assistant] = await client.assistants.search(metadata={"created_by": "system"})
    assert assistant["graph_id"] == "trading_session"
    assert (await client.assistants.get("trading_session"))["assistant_id"] == assistant["assistant_id"]
    drawn = await client.assistants.get_graph(assistant["assistant_id"])
    assert {"decide", "risk_check", "execute"} <= {n["id"] for n in drawn["nodes"]}
    assert {"source": "risk_check", "target": "approve", "conditional": True} in drawn["edges"]
    schemas = await client.assistants.get_schemas("trading_session")
    assert {"model_id", "signature", "symbols", "start", "end"} <= set(schemas["input_schema"]["properties"])


async def test_stream_pause_resume_state_and_history(server, make_user, make_model, pool):
    owner = await make_user()
    model = await make_model(owner=owner, approval_notional=1000)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    parts = [
        p
        async for p in client.runs.stream(
            thread_id, "trading_session", input=ONE_WEEK, stream_mode=["values", "updates", "custom"]
        )
    ]
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    ids = [int(p.id) for p in parts]
    assert ids == sorted(set(ids)), "event ids strictly increase"
    [paused] = [p.data["__interrupt__"] for p in parts if p.event == "updates" and "__interrupt__" in p.data]
    request = paused[0]["value"]
    assert (request["symbol"], request["side"], request["limit"]) == ("AAPL", "buy", "approval_notional")

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"] and state["interrupts"][0]["value"] == request
    assert (state["values"]["model_id"], state["values"]["signature"]) == (model["id"], model["signature"])

    result = await client.runs.wait(
        thread_id, "trading_session", command={"resume": {"action": "approve", "quantity": 3}}
    )
    assert result["done"] is True and "__interrupt__" not in result
    assert (await client.threads.get(thread_id))["status"] == "idle"
    ledger = await assert_reconciles(pool, model["id"])
    assert ledger["positions"]["AAPL"] == 3

    history = await client.threads.get_history(thread_id, limit=100)
    assert [h["metadata"]["step"] for h in history] == sorted(
        (h["metadata"]["step"] for h in history), reverse=True
    )
    assert {h["metadata"].get("run_id") for h in history if h["metadata"]["step"] >= 0} >= {
        r["run_id"] for r in await client.runs.list(thread_id)
    }
    with pytest.raises(httpx.HTTPStatusError) as not_paused:
        await client.runs.wait(thread_id, "trading_session", command={"resume": APPROVE})
    assert not_paused.value.response.status_code == 409


async def test_background_run_join_and_list(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    run = await client.runs.create(thread_id, "trading_session", input=ONE_WEEK)
    assert run["status"] in ("pending", "running")
    joined = await client.runs.join(thread_id, run["run_id"])
    assert joined["done"] is True and joined["bar_index"] == 3
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [run["run_id"]]


async def test_cancel_interrupt_keeps_checkpoints_rollback_erases_the_run(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    run = await client.runs.create(thread_id, "trading_session", input=LONG)
    await wait_status(client, thread_id, run["run_id"], {"running"})
    await asyncio.sleep(0.5)
    await client.runs.cancel(thread_id, run["run_id"], action="interrupt")
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    kept = await client.threads.get_history(thread_id, limit=5)
    assert kept and kept[0]["next"], "the interrupted session keeps its checkpoints and can continue"

    other = await session_thread(client, model)
    doomed = await client.runs.create(other, "trading_session", input=LONG)
    await wait_status(client, other, doomed["run_id"], {"running"})
    await asyncio.sleep(0.5)
    await client.runs.cancel(other, doomed["run_id"], action="rollback")
    for _ in range(100):
        if not await client.runs.list(other):
            break
        await asyncio.sleep(0.1)
    assert await client.runs.list(other) == []
    assert [
        h
        for h in await client.threads.get_history(other, limit=10)
        if h["metadata"].get("run_id") == doomed["run_id"]
    ] == []
    for _ in range(100):
        if (await client.threads.get(other))["status"] != "busy":
            break
        await asyncio.sleep(0.1)
    assert (await client.threads.get(other))["status"] != "busy"


async def test_multitask_reject_enqueue_interrupt_rollback(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = client_for(server, owner["api_key"])

    thread_id = await session_thread(client, model)
    first = await client.runs.create(thread_id, "trading_session", input=YEAR)
    with pytest.raises(ConflictError):
        await client.runs.create(thread_id, "trading_session", input=ONE_WEEK, multitask_strategy="reject")
    queued = await client.runs.create(
        thread_id, "trading_session", input=ONE_WEEK, multitask_strategy="enqueue"
    )
    await client.runs.join(thread_id, queued["run_id"])
    first_done = await client.runs.get(thread_id, first["run_id"])
    second_done = await client.runs.get(thread_id, queued["run_id"])
    assert first_done["status"] == second_done["status"] == "success"
    assert first_done["updated_at"] <= second_done["updated_at"], "enqueued runs run in order"

    thread_id = await session_thread(client, model)
    first = await client.runs.create(thread_id, "trading_session", input=LONG)
    await wait_status(client, thread_id, first["run_id"], {"running"})
    second = await client.runs.create(
        thread_id, "trading_session", input=ONE_WEEK, multitask_strategy="interrupt"
    )
    await client.runs.join(thread_id, second["run_id"])
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "success"

    thread_id = await session_thread(client, model)
    first = await client.runs.create(thread_id, "trading_session", input=LONG)
    await wait_status(client, thread_id, first["run_id"], {"running"})
    second = await client.runs.create(
        thread_id, "trading_session", input=ONE_WEEK, multitask_strategy="rollback"
    )
    await client.runs.join(thread_id, second["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, first["run_id"])
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [second["run_id"]]


async def sse_events(lines):
    event, data, ident = None, None, None
    async for line in lines:
        if line == "":
            if event:
                yield event, data, ident
            event, data, ident = None, None, None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:].strip())
        elif line.startswith("id:"):
            ident = int(line[3:].strip())


async def test_rejoin_with_last_event_id_loses_and_repeats_nothing(server, make_user, make_model):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    run = await client.runs.create(
        thread_id, "trading_session", input=TWO_DAYS, stream_mode=["updates", "custom"]
    )
    url = f"{server.url}/threads/{thread_id}/runs/{run['run_id']}/stream"
    headers = {"x-api-key": owner["api_key"]}
    seen = []
    async with httpx.AsyncClient(timeout=60) as http:
        async with http.stream("GET", url, headers=headers) as response:  # then the connection drops
            async for event in sse_events(response.aiter_lines()):
                seen.append(event)
                if len(seen) == 25:
                    break
        last_id = seen[-1][2]
        async with http.stream("GET", url, headers={**headers, "Last-Event-ID": str(last_id)}) as response:
            rest = [e async for e in sse_events(response.aiter_lines())]
        async with http.stream("GET", url, headers=headers) as response:
            everything = [e async for e in sse_events(response.aiter_lines())]
    combined = seen + rest
    assert rest[0][2] == last_id + 1 and combined[-1][0] == "end"
    assert [e[2] for e in combined] == list(range(1, len(combined) + 1))
    assert combined == everything


async def test_identity_comes_from_the_thread_never_the_client(server, make_user, make_model):
    owner, stranger = await make_user(), await make_user()
    mine, theirs = await make_model(owner=owner), await make_model(owner=stranger)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, mine)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": owner["api_key"]}) as http:
        free_trading = {"costs": {"commission_per_share": "0"}, "shorting": {"allowed": True}}
        for spoof in (
            {"signature": theirs["signature"]},
            {"model_id": theirs["id"]},
            {"terms": free_trading},
        ):
            response = await http.post(
                f"/threads/{thread_id}/runs/wait",
                json={"assistant_id": "trading_session", "input": {**ONE_WEEK, **spoof}},
            )
            assert response.status_code == 403, response.text
            assert "identity comes from the thread" in response.json()["detail"]
        response = await http.post("/threads", json={"metadata": {"model_id": theirs["id"]}})
        assert response.status_code == 404
        for forged in ({"model_id": theirs["id"]}, {"terms": free_trading}):  # the terms execute books under
            response = await http.post(f"/threads/{thread_id}/state", json={"values": forged})
            assert response.status_code == 403, response.text
    assert await client.runs.list(thread_id) == []


async def test_other_users_threads_and_runs_do_not_exist_for_you(server, make_user, make_model):
    owner, stranger = await make_user(), await make_user()
    model = await make_model(owner=owner, approval_notional=1000)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    run = await client.runs.create(thread_id, "trading_session", input=ONE_WEEK)
    await client.runs.join(thread_id, run["run_id"])
    before = await client.threads.get_state(thread_id)
    base = f"/threads/{thread_id}"
    probes = [
        ("GET", base, None),
        ("PATCH", base, {"metadata": {"x": 1}}),
        ("DELETE", base, None),
        ("GET", f"{base}/state", None),
        ("POST", f"{base}/state", {"values": {"decider": "llm"}}),
        ("GET", f"{base}/history", None),
        ("POST", f"{base}/history", {"limit": 5}),
        ("GET", f"{base}/runs", None),
        ("GET", f"{base}/runs/{run['run_id']}", None),
        ("GET", f"{base}/runs/{run['run_id']}/join", None),
        ("GET", f"{base}/runs/{run['run_id']}/stream", None),
        ("POST", f"{base}/runs/{run['run_id']}/cancel", None),
        ("POST", f"{base}/runs", {"assistant_id": "trading_session", "command": {"resume": APPROVE}}),
        ("POST", f"{base}/runs/wait", {"assistant_id": "trading_session", "input": ONE_WEEK}),
    ]
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": stranger["api_key"]}) as http:
        for method, path, body in probes:
            response = await http.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert await http.post("/threads/search", json={}) is not None
        assert (await http.post("/threads/search", json={"ids": [thread_id]})).json() == []
    after = await client.threads.get_state(thread_id)
    assert after["checkpoint"] == before["checkpoint"] and after["values"] == before["values"]
    assert (await client.threads.get(thread_id))["metadata"].get("x") is None


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (b"{not json", {"content-type": "application/json"}, 422, "Invalid JSON"),
        (
            json.dumps(
                {"assistant_id": "trading_session", "input": {**ONE_WEEK, "symbols": ["TSLA"]}}
            ).encode(),
            {},
            422,
            "unknown symbols TSLA",
        ),
        (
            json.dumps(
                {
                    "assistant_id": "trading_session",
                    "input": {**ONE_WEEK, "start": "1980-01-02", "end": "1980-02-01"},
                }
            ).encode(),
            {},
            422,
            "no data for",
        ),
        (
            json.dumps(
                {"assistant_id": "trading_session", "input": {**ONE_WEEK, "start": "2012-02-30"}}
            ).encode(),
            {},
            422,
            "start must be a date",
        ),
        (
            json.dumps(
                {"assistant_id": "trading_session", "input": ONE_WEEK, "stream_mode": "telepathy"}
            ).encode(),
            {},
            422,
            "stream_mode",
        ),
        (
            json.dumps({"assistant_id": "nope", "input": ONE_WEEK}).encode(),
            {},
            404,
            "assistant 'nope' not found",
        ),
        (b"x" * 2_000_000, {}, 413, "1 MiB"),
    ],
)
async def test_bad_run_requests_are_clear_4xx_and_write_nothing(
    server, make_user, make_model, content, headers, status, words
):
    owner = await make_user()
    model = await make_model(owner=owner)
    client = client_for(server, owner["api_key"])
    thread_id = await session_thread(client, model)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"x-api-key": owner["api_key"], **headers}
    ) as http:
        response = await http.post(f"/threads/{thread_id}/runs", content=content)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]
        assert (await http.get("/ok")).status_code == 200
    assert await client.runs.list(thread_id) == []


async def test_json_sent_as_text_plain_is_accepted_and_keys_are_required(server, make_user, make_model):
    owner = await make_user()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/ok")).json()["ok"] is True
        assert (await http.post("/threads", json={})).status_code == 401
        assert (await http.post("/threads", json={}, headers={"x-api-key": "tg_wrong"})).status_code == 401
        response = await http.post(
            "/threads",
            content=json.dumps({"metadata": {"purpose": "studio"}}),
            headers={"content-type": "text/plain", "authorization": f"Bearer {owner['api_key']}"},
        )
        assert response.status_code == 200 and response.json()["metadata"] == {"purpose": "studio"}
        unknown = await http.get(f"/threads/{uuid.uuid4()}", headers={"x-api-key": owner["api_key"]})
        assert unknown.status_code == 404
