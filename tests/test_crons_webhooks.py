"""Schedules and notifications for real: crons created with langgraph-sdk fire on time on two servers
sharing one database, each due time once; webhooks are signed, retried, and say why a run failed."""

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client
from psycopg.rows import dict_row

from server.webhooks import SIGNATURE_HEADER, WebhookRefused, check_target
from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.server import ServerProcess
from tradegraph.accounts import webhook_secret
from tradegraph.settings import get_settings

ONE_DAY = {
    "mode": "daily",
    "start": "2012-03-01",
    "end": "2012-03-01",
    "symbols": ["AAPL"],
    "decider": "rule",
}
CRON_RUNS = "SELECT run_id, thread_id, status, created_at FROM runs WHERE metadata->>'cron_id' = %s"


class Receiver:
    """A local webhook receiver: records each POST (headers and raw body); answers from `statuses`."""

    def __init__(self, statuses: list[int]) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.statuses = statuses
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append((dict(self.headers), body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]


@pytest.fixture
def two_servers(own_database_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"TRADEGRAPH_WEBHOOK_HOSTS": "127.0.0.1"}
    first = ServerProcess(own_database_url, ARTIFACTS / "cron-a.log", extra_env=env)
    second = ServerProcess(own_database_url, ARTIFACTS / "cron-b.log", extra_env=env)
    first.wait_ready(), second.wait_ready()
    yield first, second
    for server in (first, second):
        server.stop()


async def rows(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return [dict(r) for r in await (await conn.execute(sql, params)).fetchall()]


async def wait_for(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_one_minute_cron_starts_its_run_on_time_and_stops_after_delete(two_servers, own_database_url):
    server, _ = two_servers
    key, model = await owner_and_model(own_database_url)
    client = get_client(url=server.url, api_key=key)
    thread = await client.threads.create(metadata={"model_id": model["id"]})
    cron = await client.crons.create_for_thread(
        thread["thread_id"],
        "trading_session",
        schedule="* * * * *",
        input=ONE_DAY,
        metadata={"purpose": "test"},
    )
    assert (cron["schedule"], cron["timezone"], cron["thread_id"], cron["enabled"]) == (
        "* * * * *",
        "America/New_York",
        thread["thread_id"],
        True,
    )
    due = datetime.fromisoformat(cron["next_run_date"])
    assert due.second == 0 and 0 < (due - datetime.now(UTC)).total_seconds() <= 60
    found = await client.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in found] == [cron["cron_id"]]
    assert await client.crons.count(metadata={"purpose": "test"}) == 1
    stranger_key, _ = await owner_and_model(own_database_url)
    assert await get_client(url=server.url, api_key=stranger_key).crons.search() == []  # per user

    async def started() -> list[dict[str, Any]]:
        return [
            r for r in await rows(own_database_url, CRON_RUNS, cron["cron_id"]) if r["status"] == "success"
        ]

    [run] = await wait_for(started, 75, "the cron's first run")
    assert str(run["thread_id"]) == thread["thread_id"]
    assert 0 <= (run["created_at"] - due).total_seconds() < 10, "started within one tick of its due time"
    fires = await rows(own_database_url, "SELECT * FROM cron_fires WHERE cron_id = %s", cron["cron_id"])
    assert [(f["due_at"], f["outcome"]) for f in fires] == [(due, "started")]

    await client.crons.delete(cron["cron_id"])
    assert await client.crons.search(thread_id=thread["thread_id"]) == []
    await asyncio.sleep(12)  # two ticks: nothing is left to fire
    assert len(await rows(own_database_url, CRON_RUNS, cron["cron_id"])) == 1


async def test_two_servers_start_each_due_run_once(two_servers, own_database_url):
    server, _ = two_servers
    key, model = await owner_and_model(own_database_url)
    client = get_client(url=server.url, api_key=key)
    crons = [
        await client.crons.create(
            "trading_session", schedule="0 0 1 1 *", input=ONE_DAY, metadata={"model_id": model["id"]}
        )
        for _ in range(6)
    ]
    ids = [c["cron_id"] for c in crons]
    async with await psycopg.AsyncConnection.connect(own_database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE crons SET next_run_date = now() - interval '1 second' WHERE cron_id = ANY(%s)", (ids,)
        )

    async def all_started() -> bool:
        fires = await rows(own_database_url, "SELECT * FROM cron_fires WHERE cron_id = ANY(%s)", ids)
        return len(fires) == 6 and all(f["outcome"] == "started" for f in fires)

    await wait_for(all_started, 30, "six fires")
    await asyncio.sleep(6)  # another tick on each server
    for cron_id in ids:
        [run] = await rows(own_database_url, CRON_RUNS, cron_id)  # exactly one run per due time
        [thread] = await rows(
            own_database_url, "SELECT * FROM threads WHERE thread_id = %s", run["thread_id"]
        )
        assert (thread["model_id"], thread["metadata"]["cron_id"]) == (
            model["id"],
            cron_id,
        )  # a new thread each
    assert len({r["thread_id"] for c in ids for r in await rows(own_database_url, CRON_RUNS, c)}) == 6


async def test_webhooks_are_signed_retried_and_report_pauses_ends_and_errors(two_servers, own_database_url):
    server, _ = two_servers
    key, model = await owner_and_model(own_database_url)
    async with await psycopg.AsyncConnection.connect(
        own_database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("UPDATE models SET approval_notional = 1000 WHERE id = %s", (model["id"],))
        secret = await webhook_secret(conn, user_id=model["user_id"])
    receiver = Receiver(statuses=[500])  # the first attempt fails; the queue tries again
    client = get_client(url=server.url, api_key=key)
    thread = await client.threads.create(metadata={"model_id": model["id"]})
    paused = await client.runs.wait(
        thread["thread_id"], "trading_session", input=ONE_DAY, webhook=receiver.url
    )
    assert paused.get("__interrupt__"), "the order above 1000 pauses for approval"
    await wait_for(lambda: asyncio.sleep(0, result=len(receiver.calls) >= 2), 30, "the retried webhook")
    (first_headers, first_body), (headers, body) = receiver.calls[:2]
    assert first_body == body, "a retry sends the same body"
    assert (
        headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    )
    event = json.loads(body)
    assert (event["event"], event["status"], event["model_id"], event["thread_id"]) == (
        "run.interrupted",
        "interrupted",
        model["id"],
        thread["thread_id"],
    )
    assert event["paused_order"]["kind"] == "order_approval" and event["paused_order"]["symbol"] == "AAPL"

    await client.runs.wait(
        thread["thread_id"], "trading_session", command={"resume": {"action": "reject"}}, webhook=receiver.url
    )
    await wait_for(lambda: asyncio.sleep(0, result=len(receiver.calls) >= 3), 30, "the end webhook")
    assert receiver.events()[2]["event"] == "run.success"

    today = {**ONE_DAY, "start": "today", "end": "today"}  # no bars for today in the shipped data
    other = await client.threads.create(metadata={"model_id": model["id"]})
    http = httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key})
    answer = await http.post(
        f"/threads/{other['thread_id']}/runs",
        json={"assistant_id": "trading_session", "input": today, "webhook": receiver.url},
    )
    assert (
        answer.status_code == 422 and "no data for AAPL" in answer.json()["detail"]
    )  # asked directly: refused
    cron = await client.crons.create_for_thread(
        other["thread_id"], "trading_session", schedule="0 0 1 1 *", input=today, webhook=receiver.url
    )
    async with await psycopg.AsyncConnection.connect(own_database_url, autocommit=True) as conn:
        await conn.execute("UPDATE crons SET next_run_date = now() WHERE cron_id = %s", (cron["cron_id"],))
    await wait_for(lambda: asyncio.sleep(0, result=len(receiver.calls) >= 4), 30, "the error webhook")
    failed = receiver.events()[3]
    assert (failed["event"], failed["status"]) == ("run.error", "error")
    assert "no data for AAPL" in failed["error"]["message"], failed
    refused = await http.post(
        f"/threads/{other['thread_id']}/runs",
        json={"assistant_id": "trading_session", "input": ONE_DAY, "webhook": "http://10.1.2.3/hook"},
    )
    await http.aclose()
    assert refused.status_code == 422 and refused.json()["detail"].startswith(
        "webhook: webhook host '10.1.2.3'"
    )


def test_webhook_targets_private_addresses_need_the_operator(monkeypatch):
    monkeypatch.delenv("TRADEGRAPH_WEBHOOK_HOSTS", raising=False)
    get_settings.cache_clear()
    try:
        assert check_target("https://hooks.example.com/x") == "https://hooks.example.com/x"
        for url, words in [
            ("http://127.0.0.1:9000/x", "private or loopback"),
            ("http://[::1]/x", "private or loopback"),
            ("http://192.168.1.5/x", "private or loopback"),
            ("ftp://example.com/x", "http(s) URL"),
        ]:
            with pytest.raises(WebhookRefused, match=words.replace("(", r"\(").replace(")", r"\)")):
                check_target(url)
        monkeypatch.setenv("TRADEGRAPH_WEBHOOK_HOSTS", "127.0.0.1,*.example.com")
        get_settings.cache_clear()
        assert check_target("http://127.0.0.1:9000/x")
        assert check_target("https://a.example.com/x")
        with pytest.raises(WebhookRefused, match="not in TRADEGRAPH_WEBHOOK_HOSTS"):
            check_target("https://example.org/x")
    finally:
        get_settings.cache_clear()
