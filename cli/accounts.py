"""Async bodies of `tradegraph users create` and `models create`, each on a short-lived connection."""

from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tradegraph.accounts import BotTerms, ModelRow, user_by_name
from tradegraph.accounts import create_model as insert_model
from tradegraph.accounts import create_user as insert_user
from tradegraph.ai import AIChoice
from tradegraph.bootstrap import prepare_database
from tradegraph.database import database_url
from tradegraph.limits import RiskLimits


async def _connect() -> psycopg.AsyncConnection[Any]:
    url = database_url()
    await prepare_database(url)
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


async def create_user(name: str, *, admin: bool = False) -> tuple[int, str]:
    """Create a user (an admin when `admin`) with one key; returns its id and the key."""
    async with await _connect() as conn:
        user, key = await insert_user(conn, name=name, admin=admin)
    return user.id, key


async def create_model(
    user_name: str,
    name: str,
    signature: str,
    initial_cash: Decimal,
    limits: RiskLimits,
    llm: AIChoice | None = None,
    terms: BotTerms | None = None,
) -> ModelRow:
    """Create a model for the named user (with its own AI when `llm` is given, and its trading terms)."""
    async with await _connect() as conn:
        user = await user_by_name(conn, name=user_name)
        if user is None:
            raise SystemExit(f"no user named {user_name!r}; create it with `tradegraph users create`")
        return await insert_model(
            conn,
            user_id=user.id,
            name=name,
            signature=signature,
            initial_cash=initial_cash,
            limits=limits,
            llm=llm,
            terms=terms,
        )
