"""Each bot its own AI: two named endpoints (two real OpenAI-compatible servers), two bots of two users.

Each server must receive only its own bot's requests, with that bot's model name, instructions and
the endpoint's key; a running session keeps the AI it started with; no key ever leaves the server.
"""

import asyncio
import json

import httpx
from langgraph_sdk import get_client

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.openai_stub import OpenAIStub, trading_policy
from tests.support.server import ServerProcess

KEYS = {"alpha": "sk-alpha-0123456789-secret", "beta": "sk-beta-9876543210-secret"}
TWO_DAYS = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-01-04",
    "symbols": ["IBM"],
    "decider": "llm",
}


def ai(endpoint: str, model: str, instructions: str) -> dict:
    return {"endpoint": endpoint, "model": model, "temperature": 0, "instructions": instructions}


def system_prompts(stub: OpenAIStub) -> list[str]:
    return [m["content"] for r in stub.requests for m in r["messages"] if m["role"] == "system"]


def no_key_in(*documents: object) -> bool:
    text = json.dumps(documents, default=str)
    return not any(key in text for key in KEYS.values())


async def test_two_bots_on_two_endpoints_each_get_their_own_ai_and_keep_it(own_database_url):
    (key_a, bot_a), (key_b, bot_b) = [await owner_and_model(own_database_url) for _ in range(2)]
    with (
        OpenAIStub(trading_policy(symbol="IBM", quantity=2), models=["model-alpha"]) as alpha,
        OpenAIStub(trading_policy(symbol="IBM", quantity=3), models=["model-beta"]) as beta,
    ):
        endpoints = {
            "alpha": {"base_url": alpha.base_url, "api_key": KEYS["alpha"]},
            "beta": {"base_url": beta.base_url, "api_key": KEYS["beta"]},
        }
        env = {"TRADEGRAPH_LLM_ENDPOINTS": json.dumps(endpoints), "OPENAI_API_KEY": ""}
        server = ServerProcess(own_database_url, ARTIFACTS / "bot-ai.log", workers=4, extra_env=env)
        server.wait_ready()
        try:
            async with (
                httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key_a}) as http_a,
                httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key_b}) as http_b,
            ):
                unknown = await http_a.patch(f"/models/{bot_a['id']}", json={"llm": ai("gamma", "m", "")})
                assert unknown.status_code == 422, unknown.text
                assert "gamma" in unknown.text and "alpha, beta" in unknown.text
                set_a = await http_a.patch(
                    f"/models/{bot_a['id']}", json={"llm": ai("alpha", "model-alpha", "Be A.")}
                )
                set_b = await http_b.patch(
                    f"/models/{bot_b['id']}", json={"llm": ai("beta", "model-beta", "Be B.")}
                )
                assert set_a.status_code == set_b.status_code == 200, (set_a.text, set_b.text)
                assert set_a.json()["llm"] == ai("alpha", "model-alpha", "Be A.")
                models_seen = [(await http_a.get("/models")).json(), (await http_b.get("/models")).json()]

            client_a, client_b = (
                get_client(url=server.url, api_key=key_a),
                get_client(url=server.url, api_key=key_b),
            )
            thread_a = (await client_a.threads.create(metadata={"model_id": bot_a["id"]}))["thread_id"]
            thread_b = (await client_b.threads.create(metadata={"model_id": bot_b["id"]}))["thread_id"]

            async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key_a}) as http_a:
                spoofed = await http_a.post(
                    f"/threads/{thread_a}/runs/wait",
                    json={
                        "assistant_id": "trading_session",
                        "input": {**TWO_DAYS, "llm": ai("beta", "model-beta", "")},
                    },
                )
                assert spoofed.status_code == 403 and "llm" in spoofed.text, spoofed.text
                sneaky = await http_a.post(
                    f"/threads/{thread_a}/state", json={"values": {"llm": ai("beta", "x", "")}}
                )
                assert sneaky.status_code == 403, sneaky.text

            async def stream(client, thread_id, **options):
                return [
                    p
                    async for p in client.runs.stream(
                        thread_id,
                        "trading_session",
                        input=TWO_DAYS,
                        stream_mode=["values", "updates", "custom", "messages-tuple"],
                        **options,
                    )
                ]

            # Both at once; A pauses before its first execute, and its bot is changed meanwhile.
            parts_a, parts_b = await asyncio.gather(
                stream(client_a, thread_a, interrupt_before=["execute"]), stream(client_b, thread_b)
            )
            asked_alpha = len(alpha.requests)
            async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key_a}) as http_a:
                moved = await http_a.patch(
                    f"/models/{bot_a['id']}", json={"llm": ai("beta", "model-moved", "Moved.")}
                )
                assert moved.status_code == 200
            resumed = await client_a.runs.wait(thread_a, "trading_session", input=None)
            state_a = await client_a.threads.get_state(thread_a)
            state_b = await client_b.threads.get_state(thread_b)

            # An arena of user B: its beta bot and a second bot on alpha, ranked on the same market.
            alpha_before, beta_before = len(alpha.requests), len(beta.requests)
            async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key_b}) as http_b:
                second = await http_b.post(
                    "/models",
                    json={
                        "name": "second",
                        "signature": "b-on-alpha",
                        "initial_cash": "100000",
                        "llm": ai("alpha", "model-alpha", "Be A."),
                    },
                )
                assert second.status_code == 201, second.text
                entered = [bot_b["id"], second.json()["id"]]
                started = await http_b.post("/arenas", json={"models": entered, "input": TWO_DAYS})
                assert started.status_code == 200, started.text
                for _ in range(300):
                    board = (await http_b.get(f"/arenas/{started.json()['arena_id']}")).json()
                    if all(row["status"] not in ("pending", "running") for row in board["standings"]):
                        break
                    await asyncio.sleep(0.1)
        finally:
            server.stop()

    assert resumed["done"] is True and resumed["bar_index"] == 1
    assert len(alpha.requests) > asked_alpha, "the resumed session's next bar asked its own endpoint"
    assert {r["model"] for r in alpha.requests} == {"model-alpha"}
    assert {r["model"] for r in beta.requests} == {"model-beta"}, (
        "the change did not reach the running session"
    )
    assert system_prompts(alpha) and all("Be A." in p and "Be B." not in p for p in system_prompts(alpha))
    assert system_prompts(beta) and all("Be B." in p and "Be A." not in p for p in system_prompts(beta))
    assert set(alpha.authorizations) == {f"Bearer {KEYS['alpha']}"}
    assert set(beta.authorizations) == {f"Bearer {KEYS['beta']}"}
    assert state_a["values"]["llm"] == ai("alpha", "model-alpha", "Be A."), (
        "state keeps the AI it started with"
    )
    assert state_b["values"]["llm"] == ai("beta", "model-beta", "Be B.")
    decisions_a = [p.data for p in parts_a if p.event == "custom" and p.data["type"] == "decision"]
    fills_b = [p.data for p in parts_b if p.event == "custom" and p.data["type"] == "fill"]
    assert decisions_a and all(d["status"] == "ok" for d in decisions_a)
    assert [f["quantity"] for f in fills_b] == [3, 3]
    ranked = board["standings"]
    assert [row["status"] for row in ranked] == ["success", "success"]
    assert {row["signature"]: row["llm"]["endpoint"] for row in ranked} == {
        bot_b["signature"]: "beta",
        "b-on-alpha": "alpha",
    }
    returns = [row["total_return"] for row in ranked]
    assert returns == sorted(returns, reverse=True) and all(row["trades"] == 2 for row in ranked)
    assert len(alpha.requests) > alpha_before and len(beta.requests) > beta_before, "each bot asked its own"
    assert no_key_in(board)
    assert no_key_in(models_seen, [p.data for p in parts_a + parts_b], state_a, state_b, resumed)
    assert no_key_in(server.log())
