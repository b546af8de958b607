"""What an operator reads and relies on: readiness, Prometheus metrics, rate limits, JSON logs."""

import asyncio
import json
import signal
from typing import Any

import httpx
from langgraph_sdk import get_client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.openai_stub import OpenAIStub, error, trading_policy
from tests.support.server import ServerProcess

DENIED_BY_RULE = (
    "SELECT rule, count(*) AS n FROM orders WHERE model_id = %s AND status = 'rejected' GROUP BY rule"
)
YEAR = {"mode": "daily", "start": "2011-01-03", "end": "2011-12-30", "symbols": ["AAPL", "MSFT"]}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    answer = httpx.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_the_runs(server: Any, make_model: Any, pool: Any) -> None:
    model = await make_model()
    before = scrape(server.url)
    client = get_client(url=server.url, api_key=model["api_key"])
    thread = await client.threads.create(metadata={"model_id": model["id"]})
    result = await client.runs.wait(thread["thread_id"], "trading_session", input=YEAR)
    assert "__error__" not in result
    after = scrape(server.url)
    async with pool.connection() as conn:
        fills = (
            await (
                await conn.execute("SELECT count(*) AS n FROM fills WHERE model_id = %s", (model["id"],))
            ).fetchone()
        )["n"]
        denied = await (await conn.execute(DENIED_BY_RULE, (model["id"],))).fetchall()
    assert (
        value(after, "tradegraph_bars_total") - value(before, "tradegraph_bars_total") == result["bars_total"]
    )
    assert value(after, "tradegraph_fills_total") - value(before, "tradegraph_fills_total") == fills > 0
    for row in denied:
        rule = row["rule"]
        moved = value(after, "tradegraph_risk_denials_total", rule=rule) - value(
            before, "tradegraph_risk_denials_total", rule=rule
        )
        assert moved == row["n"]
    succeeded = value(after, "tradegraph_runs", status="success") - value(
        before, "tradegraph_runs", status="success"
    )
    assert succeeded >= 1
    runs_timed = value(after, "tradegraph_run_duration_seconds_count", outcome="success") - value(
        before, "tradegraph_run_duration_seconds_count", outcome="success"
    )
    assert runs_timed >= 1
    assert value(after, "tradegraph_workers_live") >= 1
    assert value(after, "tradegraph_worker_running") == 1
    assert value(after, "tradegraph_queue_depth") >= 0


def test_readiness_is_ok_on_a_healthy_server(server: Any) -> None:
    answer = httpx.get(f"{server.url}/ready", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ready": True, "checks": {"database": "ok", "queue": "ok", "worker": "ok"}}


def test_a_hammering_key_gets_429_and_others_do_not(own_database_url: str) -> None:
    key, model = asyncio.run(owner_and_model(own_database_url))
    other_key, _ = asyncio.run(owner_and_model(own_database_url))
    env = {"TRADEGRAPH_RATE_LIMIT": "5/second", "TRADEGRAPH_LOG_FORMAT": "json"}
    server = ServerProcess(
        own_database_url, ARTIFACTS / "rate-limit.log", workers=1, extra_env=env
    ).wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            answers = [http.get(f"/models/{model['id']}", headers={"x-api-key": key}) for _ in range(8)]
            codes = [a.status_code for a in answers]
            assert codes.count(200) == 5 and codes[5:] == [429, 429, 429], codes
            refused = answers[-1]
            assert "rate limit exceeded for this API key: 5 per 1 second" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) >= 1
            assert http.get("/models", headers={"x-api-key": other_key}).status_code == 200
            assert all(http.get("/ok").status_code == 200 for _ in range(10)), "probes are never limited"
    finally:
        assert server.stop() in (0, -signal.SIGTERM)
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    assert lines, "JSON log lines"
    records = [json.loads(line) for line in lines]
    assert all({"asctime", "levelname", "name", "message"} <= set(r) for r in records)
    assert any("tradegraph ready" in r["message"] for r in records)


async def test_llm_calls_are_timed_and_their_failures_counted(own_database_url: str) -> None:
    key, model = await owner_and_model(own_database_url)
    one_bar = {
        "mode": "daily",
        "start": "2012-01-03",
        "end": "2012-01-03",
        "symbols": ["IBM"],
        "decider": "llm",
    }
    with OpenAIStub(trading_policy(symbol="IBM", quantity=2)) as stub:
        env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": stub.base_url}
        server = ServerProcess(own_database_url, ARTIFACTS / "llm-metrics.log", workers=1, extra_env=env)
        server.wait_ready()
        client = get_client(url=server.url, api_key=key)
        try:
            thread = await client.threads.create(metadata={"model_id": model["id"]})
            assert "__error__" not in await client.runs.wait(
                thread["thread_id"], "trading_session", input=one_bar
            )
            calls = len(stub.requests)
            timed = scrape(server.url)
            stub.policy = lambda _request: error(500, "the model is down")
            failing = await client.threads.create(metadata={"model_id": model["id"]})
            await client.runs.wait(failing["thread_id"], "trading_session", input=one_bar)
            after = scrape(server.url)
        finally:
            server.stop()
    assert calls >= 2, "a tool call, then the closing answer"
    assert value(timed, "tradegraph_llm_call_seconds_count") == calls
    assert value(timed, "tradegraph_llm_errors_total") == 0
    assert value(after, "tradegraph_llm_errors_total") == 1, (
        "one decision failed (after the client's retries)"
    )
