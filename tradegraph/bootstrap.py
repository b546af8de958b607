"""Bring a database up to date: schema migrations, checkpoint tables, and the shipped prices."""

from tradegraph.market.loader import load_prices
from tradegraph.migrate import migrate


async def prepare_database(url: str) -> None:
    """Idempotent; safe to run from several processes at once."""
    await migrate(url)
    await load_prices(url)
