"""Static configuration from the environment and `.env` (never identity: that lives in graph state)."""

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Process-wide settings: where the database and the LLM endpoint are, and which environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = None
    """Postgres URL; when unset an embedded PostgreSQL is started under `data_dir`."""

    data_dir: Path = Field(default=PROJECT_ROOT / ".tradegraph", alias="TRADEGRAPH_DATA_DIR")
    """Where the embedded database keeps its files."""

    env: Literal["development", "production", "test"] = Field(default="development", alias="TRADEGRAPH_ENV")
    """`production` refuses unsafe start-ups (embedded database, development keys)."""

    openai_api_key: str | None = None
    """Key for the OpenAI-compatible endpoint used by the `llm` decider."""

    openai_base_url: str | None = None
    """Base URL of any OpenAI-compatible server; None means api.openai.com."""

    llm_model: str = Field(default="gpt-4o-mini", alias="TRADEGRAPH_LLM_MODEL")
    """Chat model name sent to the endpoint."""

    llm_endpoints: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="TRADEGRAPH_LLM_ENDPOINTS")
    """Named OpenAI-compatible endpoints, JSON: `{"local": {"base_url": "...", "api_key": "..."}}`
    (optional `timeout_s`). Bots choose one by name; `openai` is OPENAI_API_KEY / OPENAI_BASE_URL."""

    llm_timeout_s: float = Field(default=30.0, alias="TRADEGRAPH_LLM_TIMEOUT")
    """Per-request timeout for LLM calls, in seconds."""

    workers: int = Field(default=100, ge=0, alias="TRADEGRAPH_WORKERS")
    """Run slots: runs one `tradegraph serve` (or `tradegraph worker`) executes at once.

    A slot costs a task and its graph's state in memory, not a connection: runs take connections
    from the pool per database call, so 100 slots share `db_pool_size` connections.
    """

    db_pool_size: int = Field(default=10, ge=2, alias="TRADEGRAPH_DB_POOL_SIZE")
    """Most database connections one process opens for runs and requests (plus 1 to listen and
    up to 5 for the queue).

    Fewer connections are each used more: every new connection prepares each statement on its first
    use (`prepare_threshold=0`), plans it afresh for its first five executions (custom plans) and
    fills its catalog caches. On the 2-core benchmark machine, 10 against 20 gave
    less than half of PostgreSQL's planning time and about 11% more sessions' bars per second
    (README, "Streams in the writer's process"). Raise it for a database with many cores.
    """

    worker_restart_s: float = Field(default=1.0, gt=0, alias="TRADEGRAPH_WORKER_RESTART_S")
    """A dead run worker is restarted after this many seconds (times the deaths in a row)."""

    stuck_after_s: float = Field(default=60.0, gt=0, alias="TRADEGRAPH_STUCK_AFTER_S")
    """A stream or wait on a run ends with an error once no live worker has existed for this long."""

    rate_limit: str = Field(default="100/second", alias="TRADEGRAPH_RATE_LIMIT")
    """Requests allowed per API key, in `limits` notation (`100/second;2000/minute`); `none` for no limit."""

    webhook_hosts: str = Field(default="", alias="TRADEGRAPH_WEBHOOK_HOSTS")
    """Comma-separated hosts webhooks may call (`*.example.com` for subdomains); empty: any public host.
    Loopback and private addresses are refused unless listed here."""

    events_retention_days: float = Field(default=7.0, ge=0, alias="TRADEGRAPH_EVENTS_RETENTION_DAYS")
    """Stored stream events of a finished run (and finished queue jobs) are kept this long."""

    checkpoint_retention_days: float = Field(default=7.0, ge=0, alias="TRADEGRAPH_CHECKPOINT_RETENTION_DAYS")
    """A settled session keeps its per-step checkpoints this long; then only its final one."""

    log_format: Literal["text", "json"] = Field(default="text", alias="TRADEGRAPH_LOG_FORMAT")
    """`json` writes one JSON object per log line (for log shippers)."""


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
