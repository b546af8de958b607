"""`tradegraph serve`: uvicorn with the app and its in-process run workers."""

import uvicorn

from server.app import create_app
from tradegraph.settings import get_settings


def serve(*, host: str, port: int, workers: int | None) -> None:
    """Serve until SIGINT/SIGTERM; shutdown stops the workers and closes the pool cleanly.

    If the run worker cannot be kept alive the server shuts down and the process exits non-zero,
    so that a supervisor (systemd, Kubernetes) starts a fresh one.
    """
    fatal: list[str] = []

    def give_up(reason: str) -> None:
        fatal.append(reason)
        server.should_exit = True

    config = uvicorn.Config(
        create_app(workers=workers, on_fatal=give_up),
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=10,
        log_config=None if get_settings().log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )
    server = uvicorn.Server(config)
    server.run()
    if fatal:
        raise SystemExit(f"tradegraph serve stopped: {fatal[0]}")
