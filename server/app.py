"""The FastAPI app: one pool, migrations and checkpoint tables at start, run workers in-process."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from server import console
from server.bootstrap import check_startup, refuse_unsafe_database
from server.errors import BodyGuard, install_error_handlers
from server.routers import assistants, meta, models, runs, threads
from server.services import RunServices
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url, make_pool
from tradegraph.settings import get_settings

log = logging.getLogger(__name__)


def create_app(*, workers: int | None = None) -> FastAPI:
    """The service; `workers` in-process run slots (settings default; 0 for an API-only process)."""
    settings = get_settings()
    slots = settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_unsafe_database(settings)
        url = database_url()
        await prepare_database(url)
        pool = make_pool(url, min_size=2, max_size=20)
        await pool.open()
        try:
            await check_startup(pool, settings)
            services = await RunServices.start(url, pool, workers=slots)
        except BaseException:
            await pool.close()
            raise
        app.state.pool, app.state.services = pool, services
        log.info("tradegraph ready with %d run worker slot(s)", slots)
        try:
            yield
        finally:
            await services.stop()
            await pool.close()

    app = FastAPI(
        title="tradegraph",
        version="0.1.0",
        lifespan=lifespan,
        description="AI trading sessions as LangGraph graphs, over the LangGraph server protocol.",
    )
    install_error_handlers(app)
    for module in (meta, assistants, threads, runs, models):
        app.include_router(module.router)
    app.include_router(console.router)
    app.add_middleware(BodyGuard)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        allow_private_network=True,
        expose_headers=["x-pagination-total", "x-pagination-next", "content-location", "location"],
    )
    return app
