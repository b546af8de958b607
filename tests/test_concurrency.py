"""Many bots at once: sessions started together all progress together on one server, and all reconcile."""

import asyncio
import time

from langgraph_sdk import get_client

from tests.conftest import ARTIFACTS
from tests.support.accounts import owner_and_model
from tests.support.ledger_checks import assert_reconciles
from tests.support.server import ServerProcess
from tradegraph.database import make_pool

SESSIONS = 50
A_QUARTER = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-03-30",
    "symbols": ["AAPL", "MSFT", "IBM"],
    "decider": "rule",
}
BARS = 62  # trading days in the first quarter of 2012


async def test_fifty_sessions_started_together_all_progress_before_any_finishes(own_database_url):
    """With the default run slots, no session waits for another to finish: every one has streamed its
    first bar before the first one ends (run two at a time, the last would start after 24 ended).
    Sessions last a quarter: a month's quiet bars take one `hold` step, and 20-bar sessions that
    started first had ended before the last ones started."""
    server = ServerProcess(
        own_database_url,
        ARTIFACTS / "concurrency.log",
        workers=100,
        extra_env={"TRADEGRAPH_RATE_LIMIT": "none"},
    ).wait_ready()
    bots = [await owner_and_model(own_database_url) for _ in range(SESSIONS)]
    first_bar: dict[int, float] = {}
    ended: dict[int, float] = {}
    bars: dict[int, int] = {}

    async def stream(index: int, key: str, model: dict) -> None:
        client = get_client(url=server.url, api_key=key, timeout=300)
        thread = await client.threads.create(metadata={"model_id": model["id"]})
        await ready.wait()
        async for part in client.runs.stream(
            thread["thread_id"], "trading_session", input=A_QUARTER, stream_mode=["custom"]
        ):
            assert part.event != "error", part.data
            if part.event == "custom" and part.data["type"] == "equity":
                bars[index] = bars.get(index, 0) + 1
                first_bar.setdefault(index, time.monotonic())
        ended[index] = time.monotonic()

    ready = asyncio.Event()
    try:
        tasks = [asyncio.create_task(stream(i, key, model)) for i, (key, model) in enumerate(bots)]
        await asyncio.sleep(1.0)  # every thread created
        ready.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=240)
    finally:
        assert server.stop() in (0, -15)
    assert bars == {i: BARS for i in range(SESSIONS)}, "every session ran every bar"
    assert max(first_bar.values()) < min(ended.values()), "every session streamed a bar before any finished"
    pool = make_pool(own_database_url, max_size=4)
    await pool.open()
    try:
        for _, model in bots:
            await assert_reconciles(pool, model["id"])
    finally:
        await pool.close()
