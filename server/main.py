"""`tradegraph serve`: uvicorn with the app and its in-process run workers."""

import uvicorn

from server.app import create_app


def serve(*, host: str, port: int, workers: int | None) -> None:
    """Serve until SIGINT/SIGTERM; shutdown stops the workers and closes the pool cleanly."""
    uvicorn.run(
        create_app(workers=workers), host=host, port=port, log_level="info", timeout_graceful_shutdown=10
    )
