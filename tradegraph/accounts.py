"""Users (their keys live in `tradegraph.keys`) and trading models: keyword-only data functions."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb
from typing_extensions import TypedDict

from tradegraph.ai import AIChoice, default_choice
from tradegraph.keys import add_key, authenticate
from tradegraph.limits import LIMIT_FIELDS, RiskLimits
from tradegraph.money import to_money
from tradegraph.terms import TERM_TYPES, Costs, Execution, Shorting, Strategy, Terms

INSERT_USER = "INSERT INTO users (name, is_admin) VALUES (%s, %s) RETURNING id"
SELECT_PROFILE = "SELECT id, name, is_admin, created_at FROM users WHERE id = %s"
SELECT_WEBHOOK_SECRET = "SELECT webhook_secret FROM users WHERE id = %s"
COUNT_USERS = "SELECT count(*) AS n FROM users"
SELECT_USER_BY_NAME = "SELECT id, name, is_admin FROM users WHERE name = %s"
_MODEL_COLUMNS = ("user_id", "name", "signature", "initial_cash", "llm", *TERM_TYPES, *LIMIT_FIELDS)
INSERT_MODEL = f"""
INSERT INTO models ({", ".join(_MODEL_COLUMNS)}) VALUES ({", ".join(["%s"] * len(_MODEL_COLUMNS))})
RETURNING *
"""
INSERT_CASH = "INSERT INTO cash_accounts (model_id, cash) VALUES (%s, %s)"
SELECT_MODEL = "SELECT * FROM models WHERE id = %s AND user_id = %s"
SELECT_MODEL_ANY_USER = "SELECT * FROM models WHERE id = %s"
SELECT_MODELS = "SELECT * FROM models WHERE user_id = %s ORDER BY id"
LOCK_MODEL = "SELECT * FROM models WHERE id = %s AND user_id = %s FOR UPDATE"
UPDATE_AI = "UPDATE models SET llm = %s WHERE id = %s AND user_id = %s RETURNING *"
UPDATE_TERMS = f"""
UPDATE models SET ({", ".join(TERM_TYPES)}) = ({", ".join(["%s"] * len(TERM_TYPES))})
WHERE id = %s AND user_id = %s RETURNING *
"""
UPDATE_LIMITS = f"""
UPDATE models SET ({", ".join(LIMIT_FIELDS)}) = ({", ".join(["%s"] * len(LIMIT_FIELDS))})
WHERE id = %s AND user_id = %s RETURNING *
"""


class SignatureTaken(ValueError):
    """The user already has a model with this signature."""


class UnknownUser(LookupError):
    """No user has this id."""


@dataclass(frozen=True)
class User:
    """An authenticated owner of models."""

    id: int
    name: str
    is_admin: bool = False
    """Admins may write market data."""


class UserProfile(TypedDict):
    """A user as they see themselves (`GET /me`)."""

    id: int
    name: str
    is_admin: bool
    created_at: datetime


class ModelRow(TypedDict):
    """A trading model (bot) as stored: identity, owner, starting cash and risk limits."""

    id: int
    user_id: int
    name: str
    signature: str
    initial_cash: Decimal
    max_position_pct: Decimal
    max_order_notional: Decimal
    max_trades_per_day: int
    daily_loss_limit_pct: Decimal
    approval_notional: Decimal | None
    max_gross_exposure_pct: Decimal
    max_net_exposure_pct: Decimal
    max_short_exposure_pct: Decimal
    max_open_orders: int
    price_band_pct: Decimal
    shorting: dict[str, Any] | None
    costs: dict[str, Any] | None
    execution: dict[str, Any] | None
    strategy: dict[str, Any] | None
    """Trading terms (`tradegraph.terms`) as stored JSON; None: the defaults."""
    llm: AIChoice | None
    """The bot's AI (endpoint name, model, temperature, instructions); None: the default one."""
    created_at: datetime


def _model(row: Any) -> ModelRow:
    return cast(ModelRow, dict(row))


async def create_user(conn: AsyncConnection[Any], *, name: str, admin: bool = False) -> tuple[User, str]:
    """Create a user (an admin when `admin`) with one API key; returns the user and the plaintext key."""
    async with conn.transaction():
        row = await (await conn.execute(INSERT_USER, (name, admin))).fetchone()
        assert row is not None
        user = User(id=row["id"], name=name, is_admin=admin)
        issued = await add_key(conn, user_id=user.id)
    return user, issued.key


async def user_for_key(conn: AsyncConnection[Any], *, key: str) -> User | None:
    """The user owning a key that is neither revoked nor expired, or None (`tradegraph.keys`)."""
    owner = await authenticate(conn, key=key)
    return User(id=owner["id"], name=owner["name"], is_admin=owner["is_admin"]) if owner else None


async def user_profile(conn: AsyncConnection[Any], *, user_id: int) -> UserProfile:
    """A user's id, name, role and creation time; UnknownUser when there is no such user."""
    row = await (await conn.execute(SELECT_PROFILE, (user_id,))).fetchone()
    if row is None:
        raise UnknownUser(f"no user with id {user_id}")
    return cast(UserProfile, dict(row))


async def webhook_secret(conn: AsyncConnection[Any], *, user_id: int) -> str:
    """The secret the user's webhooks are signed with (HMAC-SHA256); UnknownUser when there is none."""
    row = await (await conn.execute(SELECT_WEBHOOK_SECRET, (user_id,))).fetchone()
    if row is None:
        raise UnknownUser(f"no user with id {user_id}")
    return str(row["webhook_secret"])


async def user_by_name(conn: AsyncConnection[Any], *, name: str) -> User | None:
    """A user by name, or None."""
    row = await (await conn.execute(SELECT_USER_BY_NAME, (name,))).fetchone()
    return User(id=row["id"], name=row["name"], is_admin=row["is_admin"]) if row else None


async def count_users(conn: AsyncConnection[Any]) -> int:
    """How many users exist."""
    row = await (await conn.execute(COUNT_USERS)).fetchone()
    return int(row["n"]) if row else 0


async def create_model(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    name: str,
    signature: str,
    initial_cash: Decimal,
    limits: RiskLimits,
    llm: AIChoice | None = None,
    terms: "BotTerms | None" = None,
) -> ModelRow:
    """Create a model and its cash account funded with `initial_cash`."""
    values = [getattr(limits, f) for f in LIMIT_FIELDS]
    ai = Jsonb(llm) if llm is not None else None
    stored = (terms or BotTerms()).stored()
    try:
        async with conn.transaction():
            cur = await conn.execute(
                INSERT_MODEL, (user_id, name, signature, to_money(initial_cash), ai, *stored, *values)
            )
            model = await cur.fetchone()
            assert model is not None
            await conn.execute(INSERT_CASH, (model["id"], to_money(initial_cash)))
    except UniqueViolation as exc:
        raise SignatureTaken(f"you already have a model with signature {signature!r}") from exc
    return _model(model)


async def get_model(conn: AsyncConnection[Any], *, model_id: int, user_id: int | None) -> ModelRow | None:
    """A model by id; with `user_id`, only if that user owns it."""
    if user_id is None:
        cur = await conn.execute(SELECT_MODEL_ANY_USER, (model_id,))
    else:
        cur = await conn.execute(SELECT_MODEL, (model_id, user_id))
    row = await cur.fetchone()
    return _model(row) if row else None


async def lock_model(conn: AsyncConnection[Any], *, model_id: int, user_id: int) -> ModelRow | None:
    """The user's model, row-locked until the transaction ends (so limit merges do not race)."""
    row = await (await conn.execute(LOCK_MODEL, (model_id, user_id))).fetchone()
    return _model(row) if row else None


async def list_models(conn: AsyncConnection[Any], *, user_id: int) -> list[ModelRow]:
    """The user's models, oldest first."""
    return [_model(r) for r in await (await conn.execute(SELECT_MODELS, (user_id,))).fetchall()]


async def update_limits(
    conn: AsyncConnection[Any], *, model_id: int, user_id: int, limits: RiskLimits
) -> ModelRow | None:
    """Replace a model's limits; None when the user has no such model."""
    values = [getattr(limits, f) for f in LIMIT_FIELDS]
    row = await (await conn.execute(UPDATE_LIMITS, (*values, model_id, user_id))).fetchone()
    return _model(row) if row else None


async def update_ai(
    conn: AsyncConnection[Any], *, model_id: int, user_id: int, llm: AIChoice | None
) -> ModelRow | None:
    """Replace a model's AI choice (None: back to the default); None when the user has no such model.

    Sessions already started keep the AI they copied into their state."""
    row = await (await conn.execute(UPDATE_AI, (Jsonb(llm) if llm else None, model_id, user_id))).fetchone()
    return _model(row) if row else None


async def update_terms(
    conn: AsyncConnection[Any], *, model_id: int, user_id: int, terms: "BotTerms"
) -> ModelRow | None:
    """Replace a model's trading terms; None when the user has no such model."""
    row = await (await conn.execute(UPDATE_TERMS, (*terms.stored(), model_id, user_id))).fetchone()
    return _model(row) if row else None


@dataclass(frozen=True)
class BotTerms:
    """A bot's trading terms besides its risk limits (`tradegraph.terms`), defaults filled in."""

    shorting: Shorting = Shorting()
    costs: Costs = Costs()
    execution: Execution = Execution()
    strategy: Strategy = Strategy()

    def stored(self) -> list[Jsonb]:
        """Column values in TERM_TYPES order."""
        return [Jsonb(self.of(name).as_json()) for name in TERM_TYPES]

    def of(self, name: str) -> Terms:
        """One of the terms by its column name."""
        term: Terms = getattr(self, name)
        return term

    def as_json(self) -> dict[str, dict[str, Any]]:
        """Each of the terms as JSON, by column name (what `terms_of` reads back)."""
        return {name: self.of(name).as_json() for name in TERM_TYPES}


def terms_of(model: ModelRow | Mapping[str, Any]) -> BotTerms:
    """A model row's trading terms (a NULL column: the defaults), or the same read from `as_json`."""
    raw = cast(Mapping[str, Any], model)
    return BotTerms(
        shorting=Shorting.model_validate(raw.get("shorting") or {}),
        costs=Costs.model_validate(raw.get("costs") or {}),
        execution=Execution.model_validate(raw.get("execution") or {}),
        strategy=Strategy.model_validate(raw.get("strategy") or {}),
    )


def ai_of(model: ModelRow) -> AIChoice:
    """The AI a model's new sessions use: its own choice, or the default."""
    return model["llm"] if model["llm"] is not None else default_choice()


def limits_of(model: ModelRow) -> RiskLimits:
    """A model row's risk limits."""
    return RiskLimits.model_validate({field: model[field] for field in LIMIT_FIELDS})  # type: ignore[literal-required]
