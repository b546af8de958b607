"""Shared fixtures: one real Postgres database per test run (DATABASE_URL's server or embedded)."""

import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.databases import fresh_database
from tests.support.server import ServerProcess
from tradegraph.accounts import create_model, create_user
from tradegraph.database import make_pool
from tradegraph.limits import RiskLimits
from tradegraph.settings import PROJECT_ROOT, get_settings

ModelFactory = Callable[..., Awaitable[dict[str, Any]]]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test run, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def own_database_url() -> Iterator[str]:
    """A database of this test's own (for tests whose servers must not share a queue)."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """The test run's connection pool."""
    pool = make_pool(database_url, max_size=20)
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture
def make_model(pool: AsyncConnectionPool) -> ModelFactory:
    """Create a model with a unique signature, for a new user or for `owner` (from `make_user`)."""

    async def factory(
        *, user: str | None = None, owner: dict[str, Any] | None = None, cash: str = "100000", **limits: Any
    ) -> dict[str, Any]:
        async with pool.connection() as conn:
            if owner is None:
                created, key = await create_user(conn, name=user or f"user-{uuid.uuid4().hex[:8]}")
                owner_id = created.id
            else:
                owner_id, key = owner["id"], owner["api_key"]
            model = await create_model(
                conn,
                user_id=owner_id,
                name="test model",
                signature=f"sig-{uuid.uuid4().hex[:10]}",
                initial_cash=Decimal(cash),
                limits=RiskLimits(**limits),
            )
        return {**model, "api_key": key}

    return factory


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerProcess]:
    """One real `tradegraph serve` process for the API tests; must shut down cleanly."""
    ARTIFACTS.mkdir(exist_ok=True)
    process = ServerProcess(database_url, ARTIFACTS / f"server-{os.getpid()}.log").wait_ready()
    yield process
    code = process.stop()
    log = process.log_path.read_text()
    assert code in (0, -signal.SIGTERM), (
        f"server exited with {code}:\n{log[-3000:]}"
    )  # uvicorn re-raises SIGTERM
    assert "Traceback" not in log.split("Shutting down")[-1], log[-3000:]


@pytest.fixture
def make_user(pool: AsyncConnectionPool) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Create a user; returns {id, name, api_key}."""

    async def factory(name: str | None = None) -> dict[str, Any]:
        async with pool.connection() as conn:
            user, key = await create_user(conn, name=name or f"user-{uuid.uuid4().hex[:8]}")
        return {"id": user.id, "name": user.name, "api_key": key}

    return factory


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point the default `openai` endpoint at a base URL (a local OpenAI-compatible test server)."""

    def configure(base_url: str) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("TRADEGRAPH_LLM_MODEL", "gpt-4o-mini")
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()
