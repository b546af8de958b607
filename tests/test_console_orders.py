"""The console's open-orders panel and its cancel route, over HTTP against the real server and database."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from tradegraph.ledger import OrderTicket, place_order

OPEN_ORDERS_TEXT = "No open orders"


async def open_limit_order(pool: AsyncConnectionPool, model_id: int, *, symbol: str = "AAPL") -> int:
    """A resting gtc limit buy of 10 shares at 90, placed straight in the ledger; returns its id."""
    ticket = OrderTicket(
        client_order_id=f"console-test:{uuid.uuid4().hex}",
        model_id=model_id,
        thread_id="t-console",
        bar_time=datetime(2012, 3, 1, 16),
        symbol=symbol,
        side="buy",
        quantity=Decimal(10),
        status="open",
        rule="all_checks",
        reason="waits for a dip",
        order_type="limit",
        limit_price=Decimal("90"),
        time_in_force="gtc",
    )
    async with pool.connection() as conn:
        return (await place_order(conn, ticket)).order_id


async def status_of(pool: AsyncConnectionPool, order_id: int) -> str:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,))).fetchone()
    assert row is not None
    return str(row["status"])


def console(url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30)


async def test_open_orders_panel_lists_and_cancels_an_order(
    server: Any, make_model: Any, pool: AsyncConnectionPool
) -> None:
    model = await make_model()
    order_id = await open_limit_order(pool, model["id"])
    base = f"/console/fragments/models/{model['id']}"
    async with console(server.url, model["api_key"]) as client:
        panel = await client.get(f"{base}/orders")
        assert panel.status_code == 200, panel.text
        assert f'data-order-id="{order_id}"' in panel.text
        for shown in ("AAPL", "limit", "90.00", "gtc", "2012-03-01 16:00", "waits for a dip", "open"):
            assert shown in panel.text
        assert f"/orders/{order_id}/cancel" in panel.text
        page = await client.get(base)
        assert 'id="open-orders"' in page.text and f'data-order-id="{order_id}"' in page.text

        cancelled = await client.post(f"{base}/orders/{order_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.headers["hx-trigger"] == "orders-changed"
        assert f"Cancelled order {order_id}." in cancelled.text
        assert f'data-order-id="{order_id}"' not in cancelled.text
        assert OPEN_ORDERS_TEXT in cancelled.text
        assert await status_of(pool, order_id) == "cancelled"

        again = await client.post(f"{base}/orders/{order_id}/cancel")
        assert again.status_code == 409
        assert f"order {order_id} is cancelled: only open orders can be cancelled" in again.text


async def test_cancel_refuses_another_users_order(
    server: Any, make_model: Any, pool: AsyncConnectionPool
) -> None:
    owner, stranger = await make_model(), await make_model()
    order_id = await open_limit_order(pool, owner["id"])
    async with console(server.url, stranger["api_key"]) as client:
        theirs = await client.post(f"/console/fragments/models/{owner['id']}/orders/{order_id}/cancel")
        assert theirs.status_code == 404
        mine = await client.post(f"/console/fragments/models/{stranger['id']}/orders/{order_id}/cancel")
        assert mine.status_code == 404
        assert "not found" in mine.json()["detail"]
    assert await status_of(pool, order_id) == "open"


async def test_trades_show_type_and_fees_and_positions_show_shorts(
    server: Any, make_model: Any, pool: AsyncConnectionPool
) -> None:
    model = await make_model()
    await open_limit_order(pool, model["id"])
    async with pool.connection() as conn:  # a short as the ledger keeps it: a negative quantity
        await conn.execute(
            "INSERT INTO positions (model_id, symbol, quantity) VALUES (%s, 'MSFT', -5)", (model["id"],)
        )
    async with console(server.url, model["api_key"]) as client:
        page = await client.get(f"/console/fragments/models/{model['id']}")
    assert page.status_code == 200, page.text
    positions = page.text.split('id="positions"')[1].split("</table>")[0]
    assert "MSFT" in positions and "-5" in positions
    assert '<span class="badge side-short">short</span>' in positions
    trades = page.text.split('id="trades"')[1]
    assert '<th scope="col">Type</th>' in trades and "Fees</th>" in trades
    assert "<td>limit</td>" in trades
