"""Errors as JSON that name the problem; text/plain JSON accepted; oversize bodies refused."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradegraph.database import is_disconnect

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
TOO_LARGE = JSONResponse({"detail": "request body is larger than the 1 MiB limit"}, status_code=413)
DATABASE_RETRY_AFTER_S = 5


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def describe(errors: list[dict[str, Any]]) -> str:
    """One sentence per validation error: where, then what."""
    sentences = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return f"Invalid JSON in request body: {error.get('ctx', {}).get('error', 'cannot parse')}"
        sentences.append(f"{_where(tuple(error.get('loc', ())))}: {error.get('msg')}")
    return "; ".join(sentences)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with a readable `detail` and the structured errors beside it."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    return JSONResponse({"detail": describe(list(exc.errors())), "errors": errors}, status_code=422)


async def unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    """500 without internals (the traceback goes to the log); 503 while the database is away."""
    if is_disconnect(exc):
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unhandled_error)


class BodyGuard:
    """ASGI middleware: treat text/plain bodies as JSON (Studio sends them) and cap body size."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await TOO_LARGE(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"")
        if content_type.startswith(b"text/plain") or not content_type:
            headers[b"content-type"] = b"application/json"
            scope = {**scope, "headers": list(headers.items())}
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, guarded_receive, send)
        except BodyTooLarge:
            await TOO_LARGE(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised inside the guarded receive when the body passes the limit."""
