"""The `llm` decider: ChatOpenAI bound to the trading tools, one bounded tool loop per bar, and the
session-end reflection it writes to the bot's memory.

Failures are never silent: when the model call still fails after the client's retries, the bar's
decision is recorded as `failed` with the error, in state and on the stream.
"""

import functools
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from deciders.prompts import BAR_PROMPT, REFLECTION_PROMPT, SYSTEM_PROMPT
from graph.context import SessionContext, pool_of
from graph.state import MAX_LLM_TURNS, Decision, SessionState
from tools import TRADING_TOOLS
from tradegraph import memory
from tradegraph.ai import AIChoice, Endpoint, default_choice, endpoint
from tradegraph.market.prices import history

LLM_RETRIES = 2
"""Retries of a failed model call (by the OpenAI client, with backoff) before the bar fails."""
MEMORIES_IN_PROMPT = 3
"""The bot's newest memories shown in each bar's prompt (recall finds the others)."""


def chat_model_for(choice: AIChoice) -> BaseChatModel:
    """The session's own ChatOpenAI: its endpoint's URL, key and timeout, its model and temperature.

    Built from the session's state, so two sessions in one process never share an endpoint or a
    model name unless their bots chose the same; one instance per (endpoint, model, temperature)
    is kept to reuse its HTTP connections. An unconfigured endpoint fails this bot's decision only.
    """
    server = endpoint(choice["endpoint"])
    return _chat_model(choice["model"], choice["temperature"], server)


@functools.lru_cache(maxsize=64)
def _chat_model(model: str, temperature: float, server: Endpoint) -> BaseChatModel:
    return ChatOpenAI(
        model=model,
        api_key=server.api_key,
        base_url=server.base_url,
        max_retries=LLM_RETRIES,
        timeout=server.timeout_s,
        temperature=temperature,
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
            memories=await _newest_memories(state, runtime),
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


async def _newest_memories(state: SessionState, runtime: Runtime[SessionContext]) -> str:
    if runtime.store is None:
        return "none (no store in this run)"
    namespace = await memory.memory_namespace(
        await pool_of(runtime.context), model_id=state["model_id"], owner_id=state.get("owner_id")
    )
    found = await memory.newest(runtime.store, namespace, limit=MEMORIES_IN_PROMPT, as_of=state["clock"])
    return "; ".join(f"[{m['kind']}] {m['text']}" for m in found) or "none yet"


def _system(state: SessionState) -> tuple[AIChoice, SystemMessage]:
    """The session's AI and its system prompt (with the bot's own instructions)."""
    choice = state.get("llm") or default_choice()  # sessions started before bots had their own AI
    system = SYSTEM_PROMPT + (f"\n\n{choice['instructions']}" if choice["instructions"] else "")
    return choice, SystemMessage(system)


def _model_for(runtime: Runtime[SessionContext], choice: AIChoice) -> BaseChatModel:
    model = runtime.context.chat_model if runtime.context and runtime.context.chat_model else None
    return model or chat_model_for(choice)


async def llm_decide(state: SessionState, runtime: Runtime[SessionContext]) -> dict[str, Any]:
    """One model call of the bar's tool loop."""
    turn = state.get("llm_turns", 0)
    opening = [await bar_prompt(state, runtime)] if turn == 0 else []
    choice, system = _system(state)
    conversation = [system, *state.get("messages", []), *opening]
    started = time.perf_counter()
    try:
        reply = await _model_for(runtime, choice).bind_tools(TRADING_TOOLS).ainvoke(conversation)
    except Exception as exc:  # the failure is the decision: recorded, streamed, never a silent hold
        _report_call(runtime, started, failed=True)
        reason = f"model call failed after {LLM_RETRIES + 1} attempts: {type(exc).__name__}: {exc}"
        failed: Decision = {"decider": "llm", "status": "failed", "reason": reason[:2000]}
        return {**_window(turn, opening), "llm_turns": turn + 1, "decision": failed}
    _report_call(runtime, started, failed=False)
    decision = _decision(reply, turn + 1)
    return {**_window(turn, [*opening, reply]), "llm_turns": turn + 1, "decision": decision}


async def llm_reflection(state: SessionState, runtime: Runtime[SessionContext], facts: str) -> str | None:
    """The session's model, asked for one or two sentences on what worked; None when it fails or
    answers without text. Not asked when it failed the last decision: it is likely still down.
    Its tokens are not streamed (`nostream`): clients' message streams stay the bars' decisions."""
    if state.get("decision", {}).get("status") == "failed":
        return None
    choice, system = _system(state)
    started = time.perf_counter()
    try:
        reply = await _model_for(runtime, choice).ainvoke(
            [system, HumanMessage(REFLECTION_PROMPT.format(facts=facts))], config={"tags": [TAG_NOSTREAM]}
        )
    except Exception:  # the reflection falls back to the deterministic summary
        _report_call(runtime, started, failed=True)
        return None
    _report_call(runtime, started, failed=False)
    if isinstance(reply, AIMessage) and reply.tool_calls:
        return None
    text = reply.content if isinstance(reply.content, str) else ""
    return " ".join(text.split())[:500] or None


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
