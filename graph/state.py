"""The state of a trading session: identity, clock, portfolio and the current bar's work.

Identity (`model_id`, `signature`) is written once from the database and checkpointed with every
step, so every node and tool reads it from here and it survives resumes, restarts and forks.
Per-bar fields are replaced each bar, and the message window is capped, so the size of the state
does not grow with the length of the session.
"""

from typing import Annotated, Any, Literal, NotRequired, cast

from langchain_core.messages import AnyMessage
from langgraph.graph.message import Messages, add_messages
from typing_extensions import TypedDict

from tradegraph.ai import AIChoice
from tradegraph.market.prices import Mode
from tradegraph.orders import ExecutionReport, Proposal, Verdict
from tradegraph.session_request import DeciderName, SessionRequest
from tradegraph.valuation import Portfolio

MAX_MESSAGES = 40
"""Largest LLM message window kept in state (one bar's conversation)."""
IDENTITY_FIELDS = ("model_id", "signature")
"""State fields that only the database may set: never from a client, a tool or a state update."""
PROTECTED_FIELDS = (*IDENTITY_FIELDS, "owner_id", "llm", "terms")
"""Identity, the bot's owner, the session's AI (copied from the bot when the session starts) and the
trading terms `execute` books under (read by `risk_check`): a state update or a command naming one is
refused."""
MAX_LLM_TURNS = 4
"""Model calls allowed per bar before the tool loop is cut off."""
STEPS_PER_BAR = 2 * MAX_LLM_TURNS + 2
"""Graph steps one bar can take: each model call but the last may run tools, then risk_check,
approve and execute (`decide` xMAX_LLM_TURNS, `tools` x(MAX_LLM_TURNS - 1), three more)."""


class Decision(TypedDict):
    """How the decider fared this bar: `ok`, or `failed` with the reason (never a silent hold)."""

    decider: str
    status: Literal["ok", "failed"]
    reason: str


class Benchmark(TypedDict):
    """Buy-and-hold: the session's starting equity split equally at the first bar's closes."""

    start_equity: str
    shares: dict[str, str]
    cash: str


def bounded_messages(left: list[AnyMessage], right: list[AnyMessage]) -> list[AnyMessage]:
    """`add_messages`, then keep the first (the bar prompt) and the newest messages."""
    # add_messages is annotated with the wide `Messages` union (an invariant list of message-likes),
    # but two lists of messages in give a list of messages out.
    merged = cast(list[AnyMessage], add_messages(cast(Messages, left), cast(Messages, right)))
    if len(merged) <= MAX_MESSAGES:
        return merged
    tail = merged[-(MAX_MESSAGES - 1) :]
    while tail and tail[0].type == "tool":  # never start on a tool result without its call
        tail = tail[1:]
    return [merged[0], *tail]


def add_proposals(left: list[Proposal], right: list[Proposal]) -> list[Proposal]:
    """Proposals accumulate within a bar (tool calls); a new bar overwrites them."""
    return [*left, *right]


class SessionInput(TypedDict):
    """What starts a session. The server fills `model_id` and `signature` from the database."""

    model_id: int
    signature: str
    mode: NotRequired[Mode]
    start: str
    end: str
    symbols: list[str]
    decider: NotRequired[DeciderName]


def session_input(request: SessionRequest, *, model_id: int, signature: str) -> SessionInput:
    """The graph input that starts a checked request, with the identity read from the model's row."""
    return {
        "model_id": model_id,
        "signature": signature,
        "mode": request.mode,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "symbols": request.symbols,
        "decider": request.decider,
    }


class SessionState(TypedDict):
    """Everything a trading session knows, checkpointed after every step."""

    model_id: int
    """The trading model (bot) this session trades for; set once, never by a tool."""
    signature: str
    """The model's unique signature, carried with its id for audit and display."""
    owner_id: NotRequired[int]
    """The bot's owner (user id), copied from the model row by `start`: the bot's memories live in this
    user's private store namespace, so memory tools need no database read to find it."""
    llm: NotRequired[AIChoice]
    """The bot's AI when this session started (endpoint name, model, temperature, instructions; never
    a key): the `llm` decider calls this, whatever the bot says now."""
    strategy: NotRequired[dict[str, str | None]]
    """The bot's `rule` decider settings when this session started (bracket percentages)."""
    terms: NotRequired[dict[str, dict[str, Any]]]
    """The bot's trading terms (shorting, costs, execution, strategy) as `risk_check` read them with
    its limits at this bar: `execute` books the bar under the terms its verdicts were given under,
    without reading the model row again."""
    mode: Mode
    """`daily` bars or synthetic `intraday` minute bars."""
    symbols: list[str]
    """Tradable symbols of this session."""
    start: str
    """First day of the session (YYYY-MM-DD)."""
    end: str
    """Last day of the session (YYYY-MM-DD)."""
    decider: DeciderName
    """`rule` (offline moving-average crossover) or `llm`."""
    start_count: int
    """How many times this thread's session was started from input (1 at first); in every client order id."""
    clock: str
    """Close time of the current bar (ISO 8601, New York time); no read sees past it."""
    bar_index: int
    """0-based index of the current bar."""
    bars_total: int
    """How many bars the session has."""
    day_open_equity: str
    """Equity at the last mark of the previous trading day (daily loss limit)."""
    portfolio: Portfolio
    """Ledger snapshot marked at the clock, refreshed after each execute."""
    benchmark: Benchmark
    """Buy-and-hold comparison fixed at the first bar."""
    proposals: Annotated[list[Proposal], add_proposals]
    """The current bar's proposed orders (replaced by the next bar's first decide)."""
    verdicts: list[Verdict]
    """Risk decisions of the bar last checked."""
    fills: list[ExecutionReport]
    """The ledger's execution reports of the bar last executed (filled or rejected)."""
    open_orders: NotRequired[int]
    """At least how many of this session's orders rest in the book (0: none, skip looking)."""
    decision: Decision
    """This bar's decider outcome."""
    messages: Annotated[list[AnyMessage], bounded_messages]
    """The LLM conversation of the current bar, capped at MAX_MESSAGES."""
    llm_turns: int
    """Model calls made in this bar (the tool loop is bounded)."""
    done: bool
    """True after the last bar."""
    reflection: NotRequired[str]
    """The session's closing reflection, as `reflect` wrote it to the bot's memory."""
