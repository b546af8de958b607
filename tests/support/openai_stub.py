"""Local OpenAI-compatible Chat Completions server for tests.

`OpenAIStub` runs a real HTTP server (stdlib ``ThreadingHTTPServer``) on
127.0.0.1 with an OS-chosen port, so clients such as
``langchain_openai.ChatOpenAI(base_url=stub.base_url, api_key="test")`` go
through their real HTTP path. Replies are decided by a *policy*: a callable
that receives the decoded request body and returns a `Reply` built with
`text`, `tool_calls` or `error`.

Endpoints:

- ``POST /v1/chat/completions``: ``stream: false`` returns a ``chat.completion``
  object; ``stream: true`` returns SSE ``chat.completion.chunk`` events
  (chunked transfer encoding) ending with ``data: [DONE]``, plus a usage chunk
  when ``stream_options.include_usage`` is set.
- ``GET /v1/models`` and ``GET /v1/models/{id}``.

Example::

    with OpenAIStub(trading_policy()) as stub:
        llm = ChatOpenAI(model="gpt-4o-mini", base_url=stub.base_url, api_key="test")
        ...
        assert stub.requests[0]["tools"]

Only the Chat Completions API is served (``/v1/responses`` answers 404), so
keep ``ChatOpenAI`` on it: use a model such as ``gpt-4o-mini`` and/or pass
``use_responses_api=False``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeAlias

__all__ = [
    "ErrorReply",
    "OpenAIStub",
    "Policy",
    "Reply",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "error",
    "sequence",
    "text",
    "tool_calls",
    "trading_policy",
]

JSON: TypeAlias = dict[str, Any]

_ARGUMENT_FRAGMENT_SIZE = 8
_STUB_OWNER = "openai-stub"
_FINGERPRINT = "fp_openai_stub"


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake model makes.

    ``arguments`` is a dict (JSON-encoded on the wire) or a raw string sent
    verbatim (useful to simulate malformed model output). ``id`` defaults to a
    deterministic ``call_<turn>_<index>``.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """Return the arguments as the JSON string sent on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class TextReply:
    """A plain assistant text answer (``finish_reason="stop"``)."""

    content: str


@dataclass(frozen=True)
class ToolCallsReply:
    """An assistant turn with tool calls (``finish_reason="tool_calls"``)."""

    calls: tuple[ToolCall, ...]
    content: str | None = None


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with an OpenAI-style ``{"error": {...}}`` body."""

    status: int
    message: str
    type: str = "server_error"
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> JSON:
        """Return the OpenAI-style error JSON body."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": None,
                "code": self.code,
            }
        }


Reply: TypeAlias = TextReply | ToolCallsReply | ErrorReply
Policy: TypeAlias = Callable[[JSON], "Reply | str"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def text(content: str) -> TextReply:
    """Build a plain text reply."""
    return TextReply(content)


def tool_calls(
    calls: Iterable[tuple[str, Mapping[str, Any] | str] | ToolCall],
    content: str | None = None,
) -> ToolCallsReply:
    """Build a tool-calls reply from ``(name, arguments)`` pairs or `ToolCall`s."""
    built = tuple(c if isinstance(c, ToolCall) else ToolCall(c[0], c[1]) for c in calls)
    if not built:
        raise ValueError("tool_calls() needs at least one call")
    return ToolCallsReply(built, content)


def error(
    status: int,
    message: str = "stub error",
    *,
    type: str | None = None,  # noqa: A002 - mirrors the OpenAI field name
    code: str | None = None,
    retry_after_ms: int | None = 1,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """Build an HTTP error reply.

    ``retry_after_ms`` (default 1 ms) is sent as the ``retry-after-ms``
    header, which the openai client honours, so retry tests stay fast; pass
    ``None`` to use the client's normal backoff.
    """
    all_headers = dict(headers or {})
    if retry_after_ms is not None:
        all_headers.setdefault("retry-after-ms", str(retry_after_ms))
    default_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return ErrorReply(status, message, type or default_type, code, all_headers)


def sequence(*replies: Reply | str, repeat_last: bool = True) -> Policy:
    """Return a (stateful, thread-safe) policy answering with ``replies`` in order.

    After the last reply it keeps repeating it, or raises if ``repeat_last``
    is false (the stub then answers 500 and records the error).
    """
    if not replies:
        raise ValueError("sequence() needs at least one reply")
    lock = threading.Lock()
    state = {"next": 0}

    def policy(_request: JSON) -> Reply | str:
        with lock:
            index = state["next"]
            state["next"] += 1
        if index >= len(replies):
            if not repeat_last:
                raise IndexError(f"sequence policy exhausted after {len(replies)} replies")
            index = len(replies) - 1
        return replies[index]

    return policy


# --------------------------------------------------------------------------
# Ready-made policy
# --------------------------------------------------------------------------


def _current_turn(messages: list[JSON]) -> list[JSON]:
    """Return the messages after the last user message."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return messages[i + 1 :]
    return list(messages)


def _called_tool_results(turn: list[JSON]) -> dict[str, str]:
    """Map tool name -> latest tool-result content for tool calls answered in ``turn``."""
    names_by_id: dict[str, str] = {}
    for message in turn:
        for call in message.get("tool_calls") or []:
            names_by_id[call.get("id", "")] = call.get("function", {}).get("name", "")
    results: dict[str, str] = {}
    for message in turn:
        if message.get("role") == "tool":
            name = names_by_id.get(message.get("tool_call_id", ""), "")
            results[name] = _content_text(message.get("content"))
    return results


def _content_text(content: Any) -> str:
    """Flatten OpenAI message content (string or list of parts) to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def trading_policy(symbol: str = "AAPL", quantity: int = 5) -> Policy:
    """Return a stateless policy scripting a price-check-then-buy turn.

    Looking only at the messages since the last user message:

    - no tool results yet -> tool call ``get_price(symbol=...)``;
    - a ``get_price`` result -> tool call ``buy(symbol=..., quantity=...)``;
    - a ``buy`` result -> final text ``"bought {quantity} {symbol}"``.
    """

    def policy(request: JSON) -> Reply:
        results = _called_tool_results(_current_turn(request.get("messages", [])))
        if "buy" in results:
            return text(f"bought {quantity} {symbol}")
        if "get_price" in results:
            return tool_calls([("buy", {"symbol": symbol, "quantity": quantity})])
        return tool_calls([("get_price", {"symbol": symbol})])

    return policy


# --------------------------------------------------------------------------
# Wire format
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Completion:
    """Everything needed to render one completion on the wire."""

    reply: TextReply | ToolCallsReply
    id: str
    model: str
    created: int
    calls: tuple[tuple[str, ToolCall], ...]  # (resolved id, call)
    usage: JSON


def _assistant_turn_number(request: JSON) -> int:
    """Count assistant messages already in the request (for deterministic ids)."""
    return sum(1 for m in request.get("messages", []) if m.get("role") == "assistant")


def _usage(request: JSON, reply: TextReply | ToolCallsReply) -> JSON:
    """Return a deterministic, roughly-sized ``usage`` object."""
    prompt = max(1, len(json.dumps(request.get("messages", []))) // 4)
    produced = reply.content or ""
    if isinstance(reply, ToolCallsReply):
        produced += "".join(c.name + c.arguments_json() for c in reply.calls)
    completion = max(1, len(produced) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _build_completion(request: JSON, reply: TextReply | ToolCallsReply, seq: int) -> _Completion:
    """Resolve ids/usage for ``reply`` to ``request``."""
    turn = _assistant_turn_number(request)
    calls: tuple[tuple[str, ToolCall], ...] = ()
    if isinstance(reply, ToolCallsReply):
        calls = tuple((c.id or f"call_{turn}_{i}", c) for i, c in enumerate(reply.calls))
    return _Completion(
        reply=reply,
        id=f"chatcmpl-stub{seq:06d}",
        model=str(request.get("model") or "gpt-stub"),
        created=int(time.time()),
        calls=calls,
        usage=_usage(request, reply),
    )


def _finish_reason(completion: _Completion) -> str:
    return "tool_calls" if completion.calls else "stop"


def _completion_body(completion: _Completion) -> JSON:
    """Render a non-streaming ``chat.completion`` object."""
    message: JSON = {
        "role": "assistant",
        "content": completion.reply.content,
        "refusal": None,
        "annotations": [],
    }
    if completion.calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call_id, call in completion.calls
        ]
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(completion),
            }
        ],
        "usage": completion.usage,
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }


def _split_text(content: str) -> list[str]:
    """Split text into word-sized pieces whose concatenation is ``content``."""
    return re.findall(r"\S+\s*|\s+", content)


def _split_fixed(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def _tool_call_deltas(completion: _Completion) -> Iterator[JSON]:
    """Yield tool-call deltas: a header (id/name) then argument fragments, per call."""
    for index, (call_id, call) in enumerate(completion.calls):
        header = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield {"tool_calls": [header]}
        for fragment in _split_fixed(call.arguments_json(), _ARGUMENT_FRAGMENT_SIZE):
            yield {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}


def _deltas(completion: _Completion) -> list[JSON]:
    """Return the ordered ``delta`` objects for a streamed completion."""
    content = completion.reply.content
    deltas: list[JSON] = [{"content": piece} for piece in _split_text(content or "")]
    deltas.extend(_tool_call_deltas(completion))
    first: JSON = {"role": "assistant", "content": None if content is None else "", "refusal": None}
    if deltas and "tool_calls" in deltas[0]:
        first.update(deltas.pop(0))  # OpenAI puts role + first tool header together
    return [first, *deltas]


def _stream_events(completion: _Completion, include_usage: bool) -> list[JSON]:
    """Render the ``chat.completion.chunk`` events for a streamed completion."""

    def chunk(choices: list[JSON]) -> JSON:
        event: JSON = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            event["usage"] = None
        return event

    def choice(delta: JSON, finish_reason: str | None = None) -> JSON:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    events = [chunk([choice(d)]) for d in _deltas(completion)]
    events.append(chunk([choice({}, _finish_reason(completion))]))
    if include_usage:
        events.append({**chunk([]), "usage": completion.usage})
    return events


def _models_body(models: Iterable[str]) -> JSON:
    return {"object": "list", "data": [_model_object(m) for m in models]}


def _model_object(model: str) -> JSON:
    return {"id": model, "object": "model", "created": 1700000000, "owned_by": _STUB_OWNER}


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    """A JSON response, or an SSE stream when ``events`` is set."""

    status: int
    body: JSON | None = None
    events: list[JSON] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _not_found(path: str) -> _Response:
    reply = error(
        404,
        f"Unknown stub endpoint: {path}",
        retry_after_ms=None,
        headers={"x-should-retry": "false"},
    )
    return _Response(reply.status, reply.body(), headers=reply.headers)


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that tracks open connections so stop() can close them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, stub: OpenAIStub) -> None:
        self.stub = stub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every still-open (keep-alive) client connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the owning `OpenAIStub` and writes responses."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """Handle GET requests."""
        self._write(self.server.stub.handle("GET", self.path, None))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """Handle POST requests."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.server.stub.authorizations.append(self.headers.get("Authorization") or "")
        self._write(self.server.stub.handle("POST", self.path, raw))

    def log_message(self, fmt: str, *args: Any) -> None:
        """Silence per-request logging."""

    def _write(self, response: _Response) -> None:
        if response.events is not None:
            self._write_sse(response)
        else:
            self._write_json(response)

    def _write_json(self, response: _Response) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _write_sse(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in response.events or []:
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class OpenAIStub:
    """A local OpenAI-compatible HTTP server driven by a reply policy.

    Use as a context manager (or call `start`/`stop`)::

        with OpenAIStub(lambda req: text("hi")) as stub:
            stub.base_url   # "http://127.0.0.1:PORT/v1"
            stub.requests   # decoded chat-completion request bodies, in order

    ``policy`` may be reassigned at any time. If the policy raises, the stub
    answers 500 with ``x-should-retry: false`` and appends the exception to
    ``policy_errors``.
    """

    def __init__(self, policy: Policy | None = None, *, models: Iterable[str] = ("gpt-4o-mini",)) -> None:
        self.policy: Policy = policy or (lambda _request: text("ok"))
        self.models = list(models)
        self.requests: list[JSON] = []
        self.authorizations: list[str] = []
        """The Authorization header of every POST, in order."""
        self.policy_errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OpenAIStub:
        """Bind a free port and serve in a background daemon thread."""
        if self._server is not None:
            raise RuntimeError("OpenAIStub already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-stub-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("OpenAIStub is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def last_request(self) -> JSON:
        """The most recent chat-completion request body."""
        if not self.requests:
            raise LookupError("no requests recorded")
        return self.requests[-1]

    # -- request handling ----------------------------------------------------

    def handle(self, method: str, raw_path: str, raw_body: bytes | None) -> _Response:
        """Route one HTTP request (called from server threads)."""
        path = raw_path.split("?", 1)[0].rstrip("/")
        route = path.removeprefix("/v1")
        if method == "POST" and route == "/chat/completions":
            return self._chat_completions(raw_body or b"")
        if method == "GET" and route == "/models":
            return _Response(200, _models_body(self.models))
        if method == "GET" and route.startswith("/models/"):
            return _Response(200, _model_object(route.removeprefix("/models/")))
        return _not_found(f"{method} {path}")

    def _chat_completions(self, raw_body: bytes) -> _Response:
        try:
            request = json.loads(raw_body or b"null")
        except json.JSONDecodeError as exc:
            return self._error_response(error(400, f"Invalid JSON body: {exc}", retry_after_ms=None))
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return self._error_response(error(400, "'messages' is a required array", retry_after_ms=None))
        with self._lock:
            self.requests.append(request)
            seq = len(self.requests)
        reply = self._run_policy(request)
        if isinstance(reply, ErrorReply):
            return self._error_response(reply)
        completion = _build_completion(request, reply, seq)
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            return _Response(200, events=_stream_events(completion, include_usage))
        return _Response(200, _completion_body(completion))

    def _run_policy(self, request: JSON) -> Reply:
        try:
            reply = self.policy(request)
        except Exception as exc:  # surfaced to the client and recorded
            self.policy_errors.append(exc)
            return error(
                500,
                f"stub policy raised {type(exc).__name__}: {exc}",
                retry_after_ms=None,
                headers={"x-should-retry": "false"},
            )
        return text(reply) if isinstance(reply, str) else reply

    @staticmethod
    def _error_response(reply: ErrorReply) -> _Response:
        return _Response(reply.status, reply.body(), headers=reply.headers)
