"""The `llm` decider: ChatOpenAI bound to the trading tools, one bounded tool loop per bar.

Failures are never silent: when the model call still fails after the client's retries, the bar's
decision is recorded as `failed` with the error, in state and on the stream.
"""

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from deciders.prompts import BAR_PROMPT, SYSTEM_PROMPT
from graph.context import SessionContext, pool_of
from graph.state import MAX_LLM_TURNS, Decision, SessionState
from tools import TRADING_TOOLS
from tradegraph.market.prices import history
from tradegraph.settings import get_settings

LLM_RETRIES = 2
"""Retries of a failed model call (by the OpenAI client, with backoff) before the bar fails."""


def configured_chat_model() -> BaseChatModel:
    """ChatOpenAI as OpenAI users configure it: OPENAI_API_KEY, OPENAI_BASE_URL, model name."""
    settings = get_settings()
    if not settings.openai_api_key:
        raise RuntimeError("the llm decider needs OPENAI_API_KEY (and OPENAI_BASE_URL for other servers)")
    return ChatOpenAI(
        model=settings.llm_model,
        api_key=settings.openai_api_key,  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        max_retries=LLM_RETRIES,
        timeout=settings.llm_timeout_s,
        temperature=0,
    )


async def bar_prompt(state: SessionState, runtime: Runtime[SessionContext]) -> HumanMessage:
    """What the model is told at the start of a bar."""
    pool = await pool_of(runtime.context)
    clock = datetime.fromisoformat(state["clock"])
    closes = {}
    for symbol in state["symbols"]:
        bars = await history(pool, symbol, clock, state["mode"], 5)
        closes[symbol] = [str(b.close) for b in bars]
    portfolio = state["portfolio"]
    return HumanMessage(
        BAR_PROMPT.format(
            clock=state["clock"],
            bar=state["bar_index"] + 1,
            total=state["bars_total"],
            mode=state["mode"],
            symbols=", ".join(state["symbols"]),
            cash=portfolio["cash"],
            equity=portfolio["equity"],
            positions=portfolio["positions"] or "none",
            closes=closes,
        )
    )


async def llm_decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """One model call of the bar's tool loop."""
    turn = state.get("llm_turns", 0)
    opening = [await bar_prompt(state, runtime)] if turn == 0 else []
    conversation = [SystemMessage(SYSTEM_PROMPT), *state.get("messages", []), *opening]
    started = time.perf_counter()
    try:
        model = runtime.context.chat_model if runtime.context and runtime.context.chat_model else None
        model = model or configured_chat_model()
        reply = await model.bind_tools(TRADING_TOOLS).ainvoke(conversation)
    except Exception as exc:  # the failure is the decision: recorded, streamed, never a silent hold
        _report_call(runtime, started, failed=True)
        reason = f"model call failed after {LLM_RETRIES + 1} attempts: {type(exc).__name__}: {exc}"
        failed: Decision = {"decider": "llm", "status": "failed", "reason": reason[:2000]}
        return {**_window(turn, opening), "llm_turns": turn + 1, "decision": failed}
    _report_call(runtime, started, failed=False)
    decision = _decision(reply, turn + 1)
    return {**_window(turn, [*opening, reply]), "llm_turns": turn + 1, "decision": decision}


def _report_call(runtime: Runtime[SessionContext], started: float, *, failed: bool) -> None:
    if runtime.context and runtime.context.on_llm_call:
        runtime.context.on_llm_call(time.perf_counter() - started, failed)


def _window(turn: int, messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """A bar's first turn replaces the previous bar's conversation and proposals; later turns add."""
    if turn == 0:
        return {"messages": Overwrite(list(messages)), "proposals": Overwrite([])}
    return {"messages": list(messages)}


def _decision(reply: BaseMessage, turns: int) -> Decision:
    calls = reply.tool_calls if isinstance(reply, AIMessage) else []
    if calls and turns >= MAX_LLM_TURNS:
        names = ", ".join(c["name"] for c in calls)
        return {
            "decider": "llm",
            "status": "failed",
            "reason": f"tool loop stopped after {turns} model calls with calls pending: {names}",
        }
    if calls:
        return {"decider": "llm", "status": "ok", "reason": f"calling {', '.join(c['name'] for c in calls)}"}
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    return {"decider": "llm", "status": "ok", "reason": text[:500] or "no reasoning given"}
