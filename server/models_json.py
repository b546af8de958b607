"""Request bodies and JSON of the trading-model routes: money as decimal strings, limits checked whole."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.serialization import to_jsonable
from tradegraph.accounts import BotTerms, ModelRow, limits_of, terms_of
from tradegraph.ai import AIChoice, AIChoiceInput, UnknownEndpoint, checked_choice
from tradegraph.database import Pool
from tradegraph.ledger import cash_and_positions
from tradegraph.limits import RiskLimits
from tradegraph.margin import exposure
from tradegraph.market.prices import Mode
from tradegraph.metrics import Performance
from tradegraph.money import as_text, to_money
from tradegraph.reports import CurvePoint, sample_evenly
from tradegraph.terms import TERM_TYPES, Costs, Execution, Shorting, Strategy, Terms
from tradegraph.valuation import value_holdings

SIGNATURE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""The same rule as the models table's CHECK."""
SPARKLINE_POINTS = 60


class LimitsInput(RiskLimits):
    """RiskLimits as a client sends them, also refused when finer than the ledger's 4 decimal places."""

    @field_validator("max_position_pct", "max_order_notional", "daily_loss_limit_pct", "approval_notional")
    @classmethod
    def _ledger_precision(cls, value: Decimal | None) -> Decimal | None:
        # The NUMERIC(_, 4) columns would round silently, or to 0 and then fail their CHECK.
        if value is not None and to_money(value) != value:
            raise ValueError("at most 4 decimal places")
        return value


class ModelCreate(BaseModel):
    """Body of POST /models."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    """Display name."""

    signature: str = Field(pattern=SIGNATURE_PATTERN)
    """The model's identity in sessions; unique per user."""

    initial_cash: Decimal = Field(gt=0, le=Decimal("1e12"), decimal_places=4)
    """Cash the model's account starts with."""

    limits: LimitsInput | None = None
    """Risk limits; keys left out take the defaults."""

    llm: AIChoiceInput | None = None
    """The bot's AI: a configured endpoint's name, a model name, temperature, instructions."""

    shorting: Shorting | None = None
    """Short selling on margin (off unless `enabled`)."""

    costs: Costs | None = None
    """Commissions and slippage (zero unless set)."""

    execution: Execution | None = None
    """Fill simulation (`max_volume_pct`)."""

    strategy: Strategy | None = None
    """The `rule` decider's bracket exits (`take_profit_pct`, `stop_loss_pct`)."""

    def terms(self) -> BotTerms:
        """The trading terms, defaults for any left out."""
        defaults = BotTerms()
        return BotTerms(
            shorting=self.shorting or defaults.shorting,
            costs=self.costs or defaults.costs,
            execution=self.execution or defaults.execution,
            strategy=self.strategy or defaults.strategy,
        )

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class ModelPatch(BaseModel):
    """Body of PATCH /models/{id}: limits to change, merged over the current ones."""

    model_config = ConfigDict(extra="forbid")

    limits: dict[str, Any] = Field(default_factory=dict)
    """Some or all RiskLimits keys; `approval_notional: null` turns approvals off."""

    llm: AIChoiceInput | None = None
    """A new AI for the bot's next sessions (running sessions keep theirs)."""

    shorting: dict[str, Any] = Field(default_factory=dict)
    costs: dict[str, Any] = Field(default_factory=dict)
    execution: dict[str, Any] = Field(default_factory=dict)
    strategy: dict[str, Any] = Field(default_factory=dict)
    """Trading terms to change, each merged over the bot's current ones."""

    def check_not_empty(self) -> None:
        """A 422 naming `limits` when the patch changes nothing."""
        terms = (self.shorting, self.costs, self.execution, self.strategy)
        if not self.limits and self.llm is None and not any(terms):
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": ("body", "limits"),
                        "msg": "nothing to change: send limits, llm, shorting, costs, execution or strategy",
                    }
                ]
            )

    def merged_terms(self, current: BotTerms) -> BotTerms | None:
        """The bot's terms with this patch's changes, validated whole (None: no term changed);
        a 422 naming each bad key."""
        if not any((self.shorting, self.costs, self.execution, self.strategy)):
            return None
        merged: dict[str, Terms] = {}
        errors: list[Any] = []
        for name, kind in TERM_TYPES.items():
            changes: dict[str, Any] = getattr(self, name)
            try:
                merged[name] = kind.model_validate({**current.of(name).model_dump(), **changes})
            except ValidationError as exc:
                errors += [{**e, "loc": ("body", name, *e["loc"])} for e in exc.errors(include_url=False)]
        if errors:
            raise RequestValidationError(errors)
        return BotTerms(**merged)  # type: ignore[arg-type]


def merged_limits(current: RiskLimits, changes: dict[str, Any]) -> RiskLimits:
    """The current limits with `changes` applied, validated whole; 422 naming each bad key."""
    try:
        return LimitsInput.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", "limits", *error["loc"])} for error in exc.errors(include_url=False)
        ]
        raise RequestValidationError(errors) from exc


def ai_choice(raw: AIChoiceInput | None) -> AIChoice | None:
    """A request's `llm`, its endpoint configured; a 422 listing the configured endpoints otherwise."""
    if raw is None:
        return None
    try:
        return checked_choice(raw)
    except UnknownEndpoint as exc:
        error = {
            "type": "value_error",
            "loc": ("body", "llm", "endpoint"),
            "msg": str(exc),
            "input": raw.endpoint,
        }
        raise RequestValidationError([error]) from exc


def model_json(model: ModelRow) -> dict[str, Any]:
    """A models row as the API shows it."""
    terms = terms_of(model)
    return {
        "id": model["id"],
        "name": model["name"],
        "signature": model["signature"],
        "initial_cash": str(model["initial_cash"]),
        "limits": limits_of(model).as_json(),
        "llm": model["llm"],  # None: the server's default (the `openai` endpoint, TRADEGRAPH_LLM_MODEL)
        **{name: terms.of(name).as_json() for name in TERM_TYPES},
        "created_at": model["created_at"].isoformat(),
    }


def summary_json(cash: Decimal, performance: Performance, curve: list[CurvePoint]) -> dict[str, Any]:
    """The figures the console's models page shows beside each model."""
    return {
        "cash": str(cash),
        "equity": performance.end_equity,
        "total_return": performance.total_return,
        "sharpe": performance.sharpe,
        "max_drawdown": performance.max_drawdown,
        "trades": performance.trades,
        "buy_and_hold_return": performance.buy_and_hold_return,
        "sparkline": [float(p["equity"]) for p in sample_evenly(curve, SPARKLINE_POINTS)],
    }


def curve_json(curve: list[CurvePoint], *, thread_id: str | None = None) -> list[dict[str, Any]]:
    """Equity points with money as strings; `thread_id` fills in rows that lack it (one session)."""
    return [
        {
            "bar_time": p["bar_time"].isoformat(),
            "equity": str(p["equity"]),
            "benchmark": str(p["benchmark"]),
            "thread_id": p.get("thread_id", thread_id),
        }
        for p in curve
    ]


def trade_json(row: dict[str, Any]) -> dict[str, Any]:
    """A reports.trades row: ids and share counts as numbers, money and proposals as strings."""
    return {key: to_jsonable(value) for key, value in row.items()}


async def portfolio_json(
    pool: Pool, *, model: ModelRow, as_of: datetime | None, mode: Mode
) -> dict[str, Any]:
    """Ledger cash and positions marked at `as_of` (last close at or before it); unpriced without it."""
    async with pool.connection() as conn:
        cash, held = await cash_and_positions(conn, model_id=model["id"])
    valuation = await value_holdings(pool, cash=cash, quantities=held, clock=as_of, mode=mode)
    positions = [
        {
            "symbol": h.symbol,
            "quantity": held[h.symbol],
            "side": "short" if held[h.symbol] < 0 else "long",
            "price": None if h.price is None else str(h.price),
            "value": None if h.value is None else str(to_money(h.value)),
        }
        for h in valuation.holdings
    ]
    at_market = exposure(held, {h.symbol: h.price for h in valuation.holdings})
    return {
        "model_id": model["id"],
        "signature": model["signature"],
        "cash": str(cash),
        "equity": as_text(valuation.equity),
        "exposure": {  # at market: longs, shorts (a positive value), their sum and difference
            "long": as_text(at_market.long_value),
            "short": as_text(at_market.short_value),
            "gross": as_text(at_market.gross),
            "net": as_text(at_market.net),
        },
        "as_of": as_of.isoformat() if as_of else None,
        "positions": positions,
    }
