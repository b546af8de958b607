"""Create users and models straight in a database (for tests that run their own servers)."""

import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tradegraph.accounts import create_model, create_user
from tradegraph.limits import RiskLimits


async def owner_and_model(url: str) -> tuple[str, dict[str, Any]]:
    """A new user's API key and a model of theirs with 100,000 cash and default limits."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        user, key = await create_user(conn, name=f"owner-{uuid.uuid4().hex[:6]}")
        model = await create_model(
            conn,
            user_id=user.id,
            name="m",
            signature=f"s-{uuid.uuid4().hex[:8]}",
            initial_cash=Decimal(100000),
            limits=RiskLimits(),
        )
    return key, model
