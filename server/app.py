"""The FastAPI app: one pool, migrations and checkpoint tables at start, run workers in-process."""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from server import console, mcp_server
from server.bootstrap import check_startup, refuse_unsafe_database
from server.errors import BodyGuard, install_error_handlers
from server.gc_policy import settle_after_startup
from server.metrics import database_error
from server.ratelimit import RateLimit, parse_limits
from server.routers import arenas, assistants, crons, market, me, meta, models, runs, store, threads
from server.services import RunServices
from tradegraph.bootstrap import prepare_database
from tradegraph.database import DISCONNECT_LISTENERS, database_url, make_pool
from tradegraph.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _log_fatal(reason: str) -> None:
    log.critical("%s", reason)


def lifespan_of(
    settings: Settings, *, slots: int, on_fatal: Callable[[str], None]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up: database, migrations, pool, start-up rules, run services; shutdown in reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_unsafe_database(settings)
        url = database_url()
        await prepare_database(url)
        pool = make_pool(url, min_size=2, max_size=get_settings().db_pool_size)
        await pool.open()
        try:
            await check_startup(pool, settings)
            services = await RunServices.start(url, pool, workers=slots, on_fatal=on_fatal)
        except BaseException:
            await pool.close()
            raise
        app.state.pool, app.state.services = pool, services
        DISCONNECT_LISTENERS.append(database_error)
        if services.worker is not None:  # fault injection: `kill -USR1 <pid>` kills the run worker task
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, services.worker.kill)
        settle_after_startup()
        log.info("tradegraph ready with %d run worker slot(s)", slots)
        try:
            async with app.state.mcp_sessions.run():  # the /mcp endpoint's task group
                yield
        finally:
            DISCONNECT_LISTENERS.remove(database_error)
            await services.stop()
            await pool.close()

    return lifespan


def create_app(*, workers: int | None = None, on_fatal: Callable[[str], None] | None = None) -> FastAPI:
    """The service; `workers` in-process run slots (settings default; 0 for an API-only process).

    `on_fatal` is told when the run worker cannot be kept alive; `tradegraph serve` then exits non-zero.
    """
    settings = get_settings()
    slots = settings.workers if workers is None else workers
    try:
        parse_limits(settings.rate_limit)
    except ValueError as exc:
        raise ValueError(f"TRADEGRAPH_RATE_LIMIT {settings.rate_limit!r} is not a rate limit: {exc}") from exc
    app = FastAPI(
        title="tradegraph",
        version="0.1.0",
        lifespan=lifespan_of(settings, slots=slots, on_fatal=on_fatal or _log_fatal),
        description="AI trading sessions as LangGraph graphs, over the LangGraph server protocol.",
    )
    install_error_handlers(app)
    for module in (meta, assistants, threads, runs, crons, store, models, arenas, me, market):
        app.include_router(module.router)
    app.include_router(console.router)
    app.state.mcp_sessions = mcp_server.mount(app)
    app.add_middleware(BodyGuard)
    app.add_middleware(RateLimit, limits=settings.rate_limit)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        allow_private_network=True,
        expose_headers=["x-pagination-total", "x-pagination-next", "content-location", "location"],
    )
    return app
