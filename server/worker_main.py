"""`tradegraph worker`: extra run workers without HTTP, sharing the queue with every server."""

import asyncio
import signal

from server.gc_policy import settle_after_startup
from server.services import RunServices
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url, make_pool
from tradegraph.settings import get_settings


async def run_worker(*, concurrency: int) -> None:
    """Execute queued runs until SIGINT/SIGTERM; exits non-zero when the worker cannot be kept alive."""
    url = database_url()
    await prepare_database(url)
    pool = make_pool(url, min_size=1, max_size=get_settings().db_pool_size)
    await pool.open()
    stop = asyncio.Event()
    fatal: list[str] = []

    def give_up(reason: str) -> None:
        fatal.append(reason)
        stop.set()

    services = await RunServices.start(url, pool, workers=concurrency, on_fatal=give_up)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if services.worker is not None:  # fault injection: `kill -USR1 <pid>` kills the run worker task
        loop.add_signal_handler(signal.SIGUSR1, services.worker.kill)
    settle_after_startup()
    try:
        await stop.wait()
    finally:
        await services.stop()
        await pool.close()
    if fatal:
        raise SystemExit(f"tradegraph worker stopped: {fatal[0]}")
