"""Tests proving `ChatOpenAI` talks to the local OpenAI stub over real HTTP."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tests.support.openai_stub import (
    OpenAIStub,
    error,
    sequence,
    text,
    tool_calls,
    trading_policy,
)


@tool
def get_price(symbol: str) -> float:
    """Return the latest price for a ticker symbol."""
    return 123.45


@tool
def buy(symbol: str, quantity: int) -> str:
    """Buy ``quantity`` shares of ``symbol``."""
    return f"filled {quantity} {symbol}"


TOOLS = {"get_price": get_price, "buy": buy}
TWO_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_price", {"symbol": "AAPL"}),
    ("buy", {"symbol": "AAPL", "quantity": 10}),
]


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    """A running stub; tests set ``stub.policy``."""
    with OpenAIStub() as running:
        yield running


def make_llm(stub: OpenAIStub, **kwargs: Any) -> ChatOpenAI:
    """Build a ChatOpenAI pointed at the stub (Chat Completions API, no retries)."""
    options: dict[str, Any] = {"max_retries": 0, "use_responses_api": False, **kwargs}
    return ChatOpenAI(model="gpt-4o-mini", base_url=stub.base_url, api_key=SecretStr("test"), **options)


def call_pairs(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(name, args)`` for each parsed tool call."""
    return [(call["name"], call["args"]) for call in message.tool_calls]


def test_plain_text_reply(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: text("hello there")

    reply = make_llm(stub).invoke("hi")

    assert reply.content == "hello there"
    assert reply.usage_metadata is not None and reply.usage_metadata["total_tokens"] > 0
    assert stub.last_request["messages"] == [{"role": "user", "content": "hi"}]
    assert stub.last_request["model"] == "gpt-4o-mini"


def test_plain_text_stream(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: text("several words of streamed text")

    chunks = list(make_llm(stub).stream("hi"))

    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == "several words of streamed text"
    assert stub.last_request["stream"] is True


def test_bind_tools_invoke(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: tool_calls(TWO_CALLS)

    reply = make_llm(stub).bind_tools([get_price, buy]).invoke("buy apple")

    assert call_pairs(reply) == TWO_CALLS
    assert len({call["id"] for call in reply.tool_calls}) == 2
    sent = {t["function"]["name"]: t["function"]["parameters"] for t in stub.last_request["tools"]}
    assert set(sent) == {"get_price", "buy"}
    assert set(sent["buy"]["properties"]) == {"symbol", "quantity"}


def test_bind_tools_stream(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: tool_calls(TWO_CALLS)

    chunks = list(make_llm(stub).bind_tools([get_price, buy]).stream("buy apple"))
    merged = functools.reduce(operator.add, chunks)

    assert len(chunks) > 4  # arguments arrive as several deltas
    assert isinstance(merged, AIMessageChunk)
    assert call_pairs(merged) == TWO_CALLS
    assert merged.response_metadata["finish_reason"] == "tool_calls"


async def test_bind_tools_astream(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: tool_calls(TWO_CALLS)
    llm = make_llm(stub).bind_tools([get_price, buy])

    chunks = [chunk async for chunk in llm.astream("buy apple")]
    merged = functools.reduce(operator.add, chunks)

    assert call_pairs(merged) == TWO_CALLS
    assert stub.last_request["stream"] is True


async def test_ainvoke_tool_calls(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: tool_calls([("get_price", {"symbol": "MSFT"})])

    reply = await make_llm(stub).bind_tools([get_price]).ainvoke("price?")

    assert call_pairs(reply) == [("get_price", {"symbol": "MSFT"})]


def test_stream_usage_chunk(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: text("ok then")

    chunks = list(make_llm(stub, stream_usage=True).stream("hi"))
    merged = functools.reduce(operator.add, chunks)

    assert stub.last_request["stream_options"] == {"include_usage": True}
    assert merged.usage_metadata is not None and merged.usage_metadata["total_tokens"] > 0


def test_error_raises_without_retry(stub: OpenAIStub) -> None:
    stub.policy = lambda _request: error(500, "boom")

    with pytest.raises(openai.InternalServerError, match="boom"):
        make_llm(stub).invoke("hi")

    assert len(stub.requests) == 1


def test_error_is_retried_then_succeeds(stub: OpenAIStub) -> None:
    stub.policy = sequence(error(500, "boom"), error(429, "slow down"), text("recovered"))

    reply = make_llm(stub, max_retries=2).invoke("hi")

    assert reply.content == "recovered"
    assert len(stub.requests) == 3


def test_policy_exception_is_reported_not_retried(stub: OpenAIStub) -> None:
    def broken(_request: dict[str, Any]) -> str:
        raise RuntimeError("policy bug")

    stub.policy = broken

    with pytest.raises(openai.InternalServerError, match="policy bug"):
        make_llm(stub, max_retries=3).invoke("hi")

    assert len(stub.requests) == 1
    assert isinstance(stub.policy_errors[0], RuntimeError)


def test_trading_policy_drives_tool_loop(stub: OpenAIStub) -> None:
    stub.policy = trading_policy(symbol="TSLA", quantity=3)
    llm = make_llm(stub).bind_tools([get_price, buy])
    messages: list[Any] = [HumanMessage("buy some tesla")]

    called: list[tuple[str, dict[str, Any]]] = []
    reply = llm.invoke(messages)
    while reply.tool_calls:
        messages.append(reply)
        for call in reply.tool_calls:
            called.append((call["name"], call["args"]))
            result = TOOLS[call["name"]].invoke(call["args"])
            messages.append(ToolMessage(str(result), tool_call_id=call["id"]))
        reply = llm.invoke(messages)

    assert called == [("get_price", {"symbol": "TSLA"}), ("buy", {"symbol": "TSLA", "quantity": 3})]
    assert reply.content == "bought 3 TSLA"
    assert len(stub.requests) == 3
    assert [m["role"] for m in stub.last_request["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


def test_trading_policy_restarts_on_new_user_turn() -> None:
    policy = trading_policy()
    history = [
        {"role": "user", "content": "buy"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "buy"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "assistant", "content": "bought 5 AAPL"},
        {"role": "user", "content": "again"},
    ]

    reply = policy({"messages": history})

    assert reply == tool_calls([("get_price", {"symbol": "AAPL"})])


def test_models_endpoint_and_unknown_route(stub: OpenAIStub) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="test", max_retries=0)

    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    response = httpx.post(f"{stub.base_url}/responses", json={})
    assert response.status_code == 404
    assert "Unknown stub endpoint" in response.json()["error"]["message"]


def test_stop_releases_port() -> None:
    stub = OpenAIStub(lambda _request: text("x")).start()
    base_url = stub.base_url
    stub.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models", timeout=1)
