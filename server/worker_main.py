"""`tradegraph worker`: extra run workers without HTTP, sharing the queue with every server."""

import asyncio
import signal

from server.services import RunServices
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url, make_pool


async def run_worker(*, concurrency: int) -> None:
    """Execute queued runs until SIGINT/SIGTERM."""
    url = database_url()
    await prepare_database(url)
    pool = make_pool(url, min_size=1, max_size=concurrency + 4)
    await pool.open()
    services = await RunServices.start(url, pool, workers=concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await services.stop()
        await pool.close()
