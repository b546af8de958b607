"""The /models routes on a real server process: bodies, money strings, ownership, and ledger figures."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.sessions import input_for, run_session
from tradegraph.accounts import create_model, create_user
from tradegraph.ledger import OrderTicket, place_order
from tradegraph.limits import RiskLimits

MISSING_ID = 987_654_321
MISSING_KEY = "missing API key: send it in the x-api-key header or as Authorization: Bearer"
COUNT_USER_MODELS = "SELECT count(*) AS n FROM models WHERE user_id = %s"
COUNT_ALL_MODELS = "SELECT count(*) AS n FROM models"
COUNT_ORDERS = "SELECT count(*) AS n FROM orders WHERE model_id = %s AND status = %s"
COUNT_ALL_ORDERS = "SELECT count(*) AS n FROM orders WHERE model_id = %s"
COUNT_FILLS = "SELECT count(*) AS n FROM fills WHERE model_id = %s"
COUNT_THREAD_FILLS = (
    "SELECT count(*) AS n FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.thread_id = %s"
)
COUNT_POINTS = "SELECT count(*) AS n FROM equity_points WHERE model_id = %s"
SELECT_MODEL = "SELECT * FROM models WHERE id = %s"
SELECT_CASH = "SELECT cash FROM cash_accounts WHERE model_id = %s"
SELECT_POSITIONS = "SELECT symbol, quantity FROM positions WHERE model_id = %s AND quantity > 0"
SELECT_POINTS = "SELECT thread_id, bar_time, equity FROM equity_points WHERE model_id = %s ORDER BY id"
SELECT_CLOSE = "SELECT close FROM daily_bars WHERE symbol = %s AND day = %s"
SELECT_FILLED_ORDER = """
SELECT o.id, o.client_order_id, o.thread_id, o.bar_time, o.symbol, o.side, o.quantity AS proposed,
       o.rule, o.reason, f.quantity, f.price, f.notional
FROM orders o JOIN fills f ON f.order_id = o.id WHERE o.model_id = %s ORDER BY o.id DESC LIMIT 1
"""
OWNED_ROUTES = [
    ("GET", "", None),
    ("PATCH", "", {"limits": {"max_trades_per_day": 7}}),
    ("GET", "/portfolio", None),
    ("GET", "/trades", None),
    ("GET", "/performance", None),
    ("GET", "/sessions", None),
]


async def scalar(pool, sql: str, *params: Any) -> Any:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    return None if row is None else next(iter(row.values()))


async def rows(pool, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return [dict(r) for r in await (await conn.execute(sql, params)).fetchall()]


def auth(key: str) -> dict[str, str]:
    return {"x-api-key": key}


@pytest.fixture
async def client(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
async def traded(pool, server) -> dict[str, Any]:
    """A model with two real rule sessions; at most one fill a day, so some orders are rejected.

    The first session also gets a protocol thread row (status idle); the second has none.
    """
    async with pool.connection() as conn:
        user, key = await create_user(conn, name=f"trader-{uuid.uuid4().hex[:8]}")
        model = await create_model(
            conn,
            user_id=user.id,
            name="crossover",
            signature=f"cross-{uuid.uuid4().hex[:8]}",
            initial_cash=Decimal(100_000),
            limits=RiskLimits(max_trades_per_day=1),
        )
    first, _ = await run_session(pool, input_for(model))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        made = await http.post(
            "/threads", json={"thread_id": first, "metadata": {"model_id": model["id"]}}, headers=auth(key)
        )
        assert made.status_code == 200, made.text
    second, _ = await run_session(pool, input_for(model, start="2012-04-02", end="2012-04-03"))
    return {"model": model, "key": key, "first": first, "second": second}


async def create(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    body = {"name": "a model", "signature": f"s-{uuid.uuid4().hex[:8]}", "initial_cash": "1000", **body}
    return await client.post("/models", json=body, headers=auth(key))


# Create, read, list, patch


async def test_create_get_list_patch_round_trip_with_exact_money(client, make_user, pool):
    user = await make_user()
    made = await create(
        client,
        user["api_key"],
        name="Momentum one",
        signature="mom.v1",
        initial_cash="250000.5",
        limits={"max_position_pct": "12.5", "approval_notional": 2500},
    )
    assert made.status_code == 201, made.text
    model = made.json()
    assert {k: v for k, v in model.items() if k not in ("id", "created_at")} == {
        "name": "Momentum one",
        "signature": "mom.v1",
        "initial_cash": "250000.5000",
        "limits": {
            "max_position_pct": "12.5000",
            "max_order_notional": "50000.0000",
            "max_trades_per_day": 20,
            "daily_loss_limit_pct": "5.0000",
            "approval_notional": "2500.0000",
            "max_gross_exposure_pct": "200.0000",
            "max_net_exposure_pct": "100.0000",
            "max_short_exposure_pct": "50.0000",
            "max_open_orders": 20,
            "price_band_pct": "20.0000",
        },
        "llm": None,
        "shorting": {
            "enabled": False,
            "borrow_rate_pct": "3",
            "initial_margin_pct": "50",
            "maintenance_margin_pct": "30",
        },
        "costs": {
            "commission_per_share": "0",
            "commission_min": "0",
            "commission_pct": "0",
            "slippage_bps": "0",
        },
        "execution": {"max_volume_pct": "10"},
        "strategy": {"take_profit_pct": None, "stop_loss_pct": None},
    }
    assert datetime.fromisoformat(model["created_at"]).tzinfo is not None
    plain = (await create(client, user["api_key"], signature="plain", initial_cash=100000)).json()
    assert (plain["initial_cash"], plain["limits"]["approval_notional"]) == ("100000.0000", None)

    assert (await client.get(f"/models/{model['id']}", headers=auth(user["api_key"]))).json() == model
    listed = (await client.get("/models", headers=auth(user["api_key"]))).json()
    assert [m["id"] for m in listed] == [model["id"], plain["id"]]
    assert {k: v for k, v in listed[0].items() if k != "summary"} == model
    assert listed[0]["summary"] == {
        "cash": "250000.5000",
        "equity": "250000.5000",
        "total_return": 0.0,
        "sharpe": None,
        "max_drawdown": 0.0,
        "trades": 0,
        "buy_and_hold_return": 0.0,
        "sparkline": [],
    }

    patched = await client.patch(
        f"/models/{model['id']}",
        json={"limits": {"max_trades_per_day": 3, "approval_notional": None}},
        headers=auth(user["api_key"]),
    )
    assert patched.status_code == 200, patched.text
    expected = {**model["limits"], "max_trades_per_day": 3, "approval_notional": None}
    assert patched.json() == {**model, "limits": expected}
    assert (await client.get(f"/models/{model['id']}", headers=auth(user["api_key"]))).json() == {
        **model,
        "limits": expected,
    }
    [row] = await rows(pool, SELECT_MODEL, model["id"])
    assert (row["max_trades_per_day"], row["approval_notional"], row["max_position_pct"]) == (
        3,
        None,
        Decimal("12.5"),
    )


async def test_a_model_that_never_traded_has_cash_only_and_empty_reports(client, make_user):
    user = await make_user()
    model = (await create(client, user["api_key"], initial_cash="5000.25")).json()
    base, headers = f"/models/{model['id']}", auth(user["api_key"])
    assert (await client.get(f"{base}/portfolio", headers=headers)).json() == {
        "model_id": model["id"],
        "signature": model["signature"],
        "cash": "5000.2500",
        "equity": "5000.2500",
        "exposure": {"long": "0.0000", "short": "0.0000", "gross": "0.0000", "net": "0.0000"},
        "as_of": None,
        "positions": [],
    }
    assert (await client.get(f"{base}/trades", headers=headers)).json() == {
        "items": [],
        "limit": 50,
        "offset": 0,
        "total": 0,
    }
    figures = (await client.get(f"{base}/performance", headers=headers)).json()
    assert (figures["bars"], figures["trades"], figures["curve"]) == (0, 0, [])
    assert (await client.get(f"{base}/sessions", headers=headers)).json() == []


async def test_json_sent_as_text_plain_is_accepted(client, make_user, pool):
    user = await make_user()
    body = {"name": "studio", "signature": "from-studio", "initial_cash": "42"}
    made = await client.post(
        "/models",
        content=json.dumps(body),
        headers={**auth(user["api_key"]), "content-type": "text/plain;charset=UTF-8"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["initial_cash"] == "42.0000"
    assert await scalar(pool, COUNT_USER_MODELS, user["id"]) == 1


# Validation: 4xx naming the field, nothing written

BAD_CREATES = [
    ({"initial_cash": "-5"}, "initial_cash"),
    ({"initial_cash": "0"}, "initial_cash"),
    ({"initial_cash": "1000000000000.01"}, "initial_cash"),
    ({"initial_cash": "100.12345"}, "initial_cash"),
    ({"initial_cash": "lots"}, "initial_cash"),
    ({"initial_cash": None}, "initial_cash"),
    ({"signature": "-leading-dash"}, "signature"),
    ({"signature": "has space"}, "signature"),
    ({"signature": "x" * 65}, "signature"),
    ({"name": ""}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"limits": {"max_position_pct": "150"}}, "limits.max_position_pct"),
    ({"limits": {"max_position_pct": "0"}}, "limits.max_position_pct"),
    ({"limits": {"daily_loss_limit_pct": "-1"}}, "limits.daily_loss_limit_pct"),
    ({"limits": {"stop_loss_pct": "5"}}, "limits.stop_loss_pct"),
    ({"limits": {"approval_notional": "0.00001"}}, "limits.approval_notional"),
    ({"limits": {"max_trades_per_day": "many"}}, "limits.max_trades_per_day"),
    ({"cash": "5"}, "cash"),
]


@pytest.mark.parametrize(("change", "field"), BAD_CREATES, ids=[f for _, f in BAD_CREATES])
async def test_invalid_create_is_422_naming_the_field_and_writes_nothing(
    client, make_user, pool, change, field
):
    user = await make_user()
    answer = await create(client, user["api_key"], **change)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"{field}: "), answer.json()
    assert await scalar(pool, COUNT_USER_MODELS, user["id"]) == 0


async def test_missing_initial_cash_is_422_naming_it(client, make_user, pool):
    user = await make_user()
    answer = await client.post("/models", json={"name": "n", "signature": "s"}, headers=auth(user["api_key"]))
    assert answer.status_code == 422
    assert answer.json()["detail"] == "initial_cash: Field required"
    assert await scalar(pool, COUNT_USER_MODELS, user["id"]) == 0


async def test_malformed_json_is_422_and_writes_nothing(client, make_user, pool):
    user = await make_user()
    answer = await client.post(
        "/models",
        content=b'{"name": "x", "signature": "x", "initial_cash": ',
        headers={**auth(user["api_key"]), "content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("Invalid JSON in request body")
    assert await scalar(pool, COUNT_USER_MODELS, user["id"]) == 0


async def test_duplicate_signature_is_409_per_user(client, make_user, pool):
    owner, other = await make_user(), await make_user()
    assert (await create(client, owner["api_key"], signature="twin")).status_code == 201
    again = await create(client, owner["api_key"], signature="twin", name="another")
    assert again.status_code == 409
    assert again.json()["detail"] == "you already have a model with signature 'twin'"
    assert await scalar(pool, COUNT_USER_MODELS, owner["id"]) == 1
    assert (await create(client, other["api_key"], signature="twin")).status_code == 201


BAD_PATCHES = [
    ({"limits": {"max_position_pct": "101"}}, "limits.max_position_pct"),
    ({"limits": {"max_position_pct": None}}, "limits.max_position_pct"),
    ({"limits": {"max_order_notional": "10.00001"}}, "limits.max_order_notional"),
    ({"limits": {"max_trades_per_day": -1}}, "limits.max_trades_per_day"),
    ({"limits": {"max_trades_per_day": 5, "daily_loss_limit_pct": "0"}}, "limits.daily_loss_limit_pct"),
    ({"limits": {"take_profit": 1}}, "limits.take_profit"),
    ({"limits": "tight"}, "limits"),
    ({}, "limits"),
]


@pytest.mark.parametrize(("body", "field"), BAD_PATCHES, ids=[str(b) for b, _ in BAD_PATCHES])
async def test_invalid_patch_is_422_naming_the_field_and_keeps_the_limits(
    client, make_user, pool, body, field
):
    user = await make_user()
    model = (await create(client, user["api_key"])).json()
    [before] = await rows(pool, SELECT_MODEL, model["id"])
    answer = await client.patch(f"/models/{model['id']}", json=body, headers=auth(user["api_key"]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"{field}: "), answer.json()
    assert await rows(pool, SELECT_MODEL, model["id"]) == [before]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("offset=-1", "offset"), ("status=pending", "status")],
)
async def test_trades_query_is_validated(client, make_user, query, field):
    user = await make_user()
    model = (await create(client, user["api_key"])).json()
    answer = await client.get(f"/models/{model['id']}/trades?{query}", headers=auth(user["api_key"]))
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"query.{field}: ")


# Authentication and ownership

ALL_ROUTES = [("GET", "", None), ("POST", "", {"name": "n", "signature": "s", "initial_cash": "1"})]


@pytest.mark.parametrize("key", [None, "tg_not-a-real-key"], ids=["missing", "wrong"])
@pytest.mark.parametrize(
    ("method", "suffix", "body"), ALL_ROUTES + [(m, f"/1{s}", b) for m, s, b in OWNED_ROUTES]
)
async def test_every_route_needs_a_valid_key(client, pool, key, method, suffix, body):
    models_before = await scalar(pool, COUNT_ALL_MODELS)
    headers = auth(key) if key else {}
    answer = await client.request(method, f"/models{suffix}", json=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["detail"] == ("invalid API key" if key else MISSING_KEY)
    assert await scalar(pool, COUNT_ALL_MODELS) == models_before


@pytest.mark.parametrize(
    ("method", "suffix", "body"), OWNED_ROUTES, ids=[f"{m} {s}" for m, s, _ in OWNED_ROUTES]
)
async def test_another_users_model_answers_like_a_missing_one(
    client, make_user, pool, traded, method, suffix, body
):
    intruder = await make_user()
    target = traded["model"]["id"]
    [before] = await rows(pool, SELECT_MODEL, target)
    orders_before = await scalar(pool, COUNT_ALL_ORDERS, target)
    theirs = await client.request(
        method, f"/models/{target}{suffix}", json=body, headers=auth(intruder["api_key"])
    )
    assert (theirs.status_code, theirs.json()) == (404, {"detail": f"model {target} not found"})
    for missing_id in (MISSING_ID, 2**70):
        missing = await client.request(
            method, f"/models/{missing_id}{suffix}", json=body, headers=auth(intruder["api_key"])
        )
        assert (missing.status_code, missing.json()) == (404, {"detail": f"model {missing_id} not found"})
    assert await rows(pool, SELECT_MODEL, target) == [before]
    assert await scalar(pool, COUNT_ALL_ORDERS, target) == orders_before


async def test_lists_and_sessions_stay_with_their_owner(client, make_user, traded):
    intruder = await make_user()
    own = (await create(client, intruder["api_key"])).json()
    listed = (await client.get("/models", headers=auth(intruder["api_key"]))).json()
    assert [m["id"] for m in listed] == [own["id"]]
    answer = await client.get(
        f"/models/{own['id']}/performance?thread_id={traded['first']}", headers=auth(intruder["api_key"])
    )
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"session {traded['first']} not found for model {own['id']}"


# Figures after real rule sessions


async def test_portfolio_is_the_ledger_marked_at_the_latest_bar(client, pool, traded):
    model_id = traded["model"]["id"]
    answer = (await client.get(f"/models/{model_id}/portfolio", headers=auth(traded["key"]))).json()
    cash = await scalar(pool, SELECT_CASH, model_id)
    held = {r["symbol"]: r["quantity"] for r in await rows(pool, SELECT_POSITIONS, model_id)}
    assert held, "the crossover strategy holds something at the end of this window"
    assert answer["as_of"] == "2012-04-03T16:00:00"
    assert (answer["model_id"], answer["signature"]) == (model_id, traded["model"]["signature"])
    assert answer["cash"] == str(cash)
    assert {p["symbol"]: p["quantity"] for p in answer["positions"]} == held
    for position in answer["positions"]:
        close = await scalar(pool, SELECT_CLOSE, position["symbol"], "2012-04-03")
        assert position["price"] == str(close)
        assert position["value"] == str(close * position["quantity"])
    equity = cash + sum(Decimal(p["value"]) for p in answer["positions"])
    assert answer["equity"] == str(equity)
    longs = sum(Decimal(p["value"]) for p in answer["positions"])
    assert answer["exposure"] == {
        "long": str(longs),
        "short": "0.0000",
        "gross": str(longs),
        "net": str(longs),
    }
    assert {p["side"] for p in answer["positions"]} == {"long"}
    last_point = (await rows(pool, SELECT_POINTS, model_id))[-1]
    assert answer["equity"] == str(last_point["equity"]), "same mark as the session's last bar"


TRADE_FIELDS = {
    "id",
    "client_order_id",
    "thread_id",
    "bar_time",
    "symbol",
    "side",
    "proposed_quantity",
    "status",
    "rule",
    "reason",
    "quantity",
    "price",
    "notional",
}


async def test_trades_are_newest_first_and_total_every_order(client, pool, traded):
    model_id, headers = traded["model"]["id"], auth(traded["key"])
    filled = await scalar(pool, COUNT_ORDERS, model_id, "filled")
    rejected = await scalar(pool, COUNT_ORDERS, model_id, "rejected")
    assert filled > 0 and rejected > 0, "one fill a day rejects some of the crossover's orders"
    everything = (await client.get(f"/models/{model_id}/trades?limit=500", headers=headers)).json()
    assert everything["total"] == filled + rejected == len(everything["items"])
    ids = [t["id"] for t in everything["items"]]
    assert ids == sorted(ids, reverse=True)

    page = (await client.get(f"/models/{model_id}/trades?limit=2&offset=1", headers=headers)).json()
    assert (page["limit"], page["offset"], page["total"]) == (2, 1, filled + rejected)
    assert [t["id"] for t in page["items"]] == ids[1:3]

    fills = (await client.get(f"/models/{model_id}/trades?status=filled&limit=500", headers=headers)).json()
    assert fills["total"] == filled == await scalar(pool, COUNT_FILLS, model_id)
    assert {t["status"] for t in fills["items"]} == {"filled"}
    refusals = (await client.get(f"/models/{model_id}/trades?status=rejected", headers=headers)).json()
    assert refusals["total"] == rejected
    assert all(t["price"] is None and t["quantity"] is None and t["reason"] for t in refusals["items"])

    [row] = await rows(pool, SELECT_FILLED_ORDER, model_id)
    newest = fills["items"][0]
    assert {k: newest[k] for k in ("order_type", "time_in_force", "filled_quantity", "commission")} == {
        "order_type": "market",
        "time_in_force": "day",
        "filled_quantity": row["quantity"],
        "commission": "0.0000",
    }
    assert {k: v for k, v in newest.items() if k in TRADE_FIELDS} == {
        "id": row["id"],
        "client_order_id": row["client_order_id"],
        "thread_id": row["thread_id"],
        "bar_time": row["bar_time"].isoformat(),
        "symbol": row["symbol"],
        "side": row["side"],
        "proposed_quantity": str(row["proposed"]),
        "status": "filled",
        "rule": row["rule"],
        "reason": row["reason"],
        "quantity": row["quantity"],
        "price": str(row["price"]),
        "notional": str(row["notional"]),
    }


async def test_performance_counts_fills_and_curves_every_bar(client, pool, traded):
    model_id, headers = traded["model"]["id"], auth(traded["key"])
    points = await rows(pool, SELECT_POINTS, model_id)
    figures = (await client.get(f"/models/{model_id}/performance", headers=headers)).json()
    assert figures["trades"] == await scalar(pool, COUNT_FILLS, model_id)
    assert figures["bars"] == len(figures["curve"]) == len(points) == 62 + 2
    assert figures["thread_id"] is None and figures["start_equity"] == "100000.0000"
    assert [(c["thread_id"], c["bar_time"], c["equity"]) for c in figures["curve"]] == [
        (p["thread_id"], p["bar_time"].isoformat(), str(p["equity"])) for p in points
    ]
    assert figures["end_equity"] == str(points[-1]["equity"])
    assert figures["total_return"] == pytest.approx(float(points[-1]["equity"] / 100_000 - 1))
    assert all(Decimal(c["benchmark"]) > 0 for c in figures["curve"])

    first = traded["first"]
    session = (await client.get(f"/models/{model_id}/performance?thread_id={first}", headers=headers)).json()
    assert session["trades"] == await scalar(pool, COUNT_THREAD_FILLS, first)
    assert session["trades"] < figures["trades"], "the second session traded too"
    assert session["bars"] == len(session["curve"]) == 62
    assert {c["thread_id"] for c in session["curve"]} == {first}
    unknown = await client.get(f"/models/{model_id}/performance?thread_id=nope", headers=headers)
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404,
        f"session nope not found for model {model_id}",
    )


async def test_sessions_are_newest_first_with_their_thread_status(client, traded):
    model_id = traded["model"]["id"]
    listed = (await client.get(f"/models/{model_id}/sessions", headers=auth(traded["key"]))).json()
    assert [(s["thread_id"], s["mode"], s["status"]) for s in listed] == [
        (traded["second"], "daily", "unknown"),
        (traded["first"], "daily", "idle"),
    ]
    assert datetime.fromisoformat(listed[0]["created_at"]) > datetime.fromisoformat(listed[1]["created_at"])


async def test_list_summary_follows_the_curve(client, pool, traded):
    model_id = traded["model"]["id"]
    [listed] = (await client.get("/models", headers=auth(traded["key"]))).json()
    summary, points = listed["summary"], await rows(pool, SELECT_POINTS, model_id)
    assert listed["id"] == model_id
    assert summary["cash"] == str(await scalar(pool, SELECT_CASH, model_id))
    assert summary["equity"] == str(points[-1]["equity"])
    assert summary["trades"] == await scalar(pool, COUNT_FILLS, model_id)
    assert len(points) > 60 and len(summary["sparkline"]) == 60
    assert summary["sparkline"][0] == float(points[0]["equity"])
    assert summary["sparkline"][-1] == float(points[-1]["equity"])
    assert set(summary["sparkline"]) <= {float(p["equity"]) for p in points}


# Orders: the book, cancellation, trading terms


async def test_open_orders_are_listed_with_their_history_and_can_be_cancelled_once(client, make_user, pool):
    owner, stranger = await make_user(), await make_user()
    model = (await create(client, owner["api_key"], initial_cash="100000")).json()
    async with pool.connection() as conn:
        placed = await place_order(
            conn,
            OrderTicket(
                client_order_id=f"api-{uuid.uuid4().hex[:8]}:1:0:0",
                model_id=model["id"],
                thread_id="api-orders",
                bar_time=datetime(2012, 3, 1, 16),
                symbol="AAPL",
                side="buy",
                quantity=Decimal(10),
                status="open",
                rule="all_checks",
                reason="passed every risk check",
                order_type="limit",
                limit_price=Decimal("500.25"),
                time_in_force="gtc",
            ),
        )
    url, headers = f"/models/{model['id']}/orders", auth(owner["api_key"])
    listed = (await client.get(f"{url}?status=open", headers=headers)).json()
    [order] = listed["items"]
    assert (listed["total"], order["id"], order["order_type"], order["limit_price"]) == (
        1,
        placed.order_id,
        "limit",
        "500.2500",
    )
    assert (order["status"], order["time_in_force"], order["filled_quantity"], order["quantity"]) == (
        "open",
        "gtc",
        0,
        None,
    )
    assert [e["status"] for e in order["events"]] == ["open"]

    assert (
        await client.post(f"{url}/{placed.order_id}/cancel", headers=auth(stranger["api_key"]))
    ).status_code == 404
    cancelled = await client.post(f"{url}/{placed.order_id}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == (
        "cancelled",
        f"cancelled by {owner['name']} over the API",
    )
    again = await client.post(f"{url}/{placed.order_id}/cancel", headers=headers)
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"order {placed.order_id} is cancelled: only open orders can be cancelled",
    )
    assert (await client.get(f"{url}?status=open", headers=headers)).json()["total"] == 0
    history = (await client.get(f"{url}?status=cancelled", headers=headers)).json()["items"][0]["events"]
    assert [e["status"] for e in history] == ["open", "cancelled"]
    assert (await client.post(f"{url}/999999/cancel", headers=headers)).status_code == 404


async def test_trading_terms_are_set_merged_and_checked(client, make_user):
    user = await make_user()
    headers = auth(user["api_key"])
    made = await create(
        client, user["api_key"], shorting={"enabled": True}, costs={"commission_per_share": "0.005"}
    )
    assert made.status_code == 201, made.text
    model = made.json()
    assert (model["shorting"]["enabled"], model["shorting"]["maintenance_margin_pct"]) == (True, "30")
    patched = await client.patch(
        f"/models/{model['id']}",
        json={"costs": {"slippage_bps": 5}, "strategy": {"stop_loss_pct": "2.5"}},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    costs = patched.json()["costs"]
    assert (costs["commission_per_share"], costs["slippage_bps"]) == ("0.005", "5")  # merged over the old
    assert patched.json()["strategy"] == {"take_profit_pct": None, "stop_loss_pct": "2.5"}
    bad = await client.patch(
        f"/models/{model['id']}",
        json={"shorting": {"maintenance_margin_pct": 0, "leverage": 4}},
        headers=headers,
    )
    assert bad.status_code == 422
    assert "shorting.maintenance_margin_pct" in bad.json()["detail"]
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {
        ("body", "shorting", "maintenance_margin_pct"),
        ("body", "shorting", "leverage"),
    }
    assert (await client.get(f"/models/{model['id']}", headers=headers)).json()[
        "costs"
    ] == costs  # nothing written
