"""Arenas: a user's bots run the same market at once and are ranked; per user, validated up front."""

import asyncio

import httpx

from tests.test_api_models import auth

SESSION = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-03-30",
    "symbols": ["AAPL", "MSFT", "IBM"],
    "decider": "rule",
}
FIELDS = {
    "model_id",
    "signature",
    "llm",
    "thread_id",
    "status",
    "bars_done",
    "bars_total",
    "equity",
    "total_return",
    "sharpe",
    "max_drawdown",
    "trades",
    "buy_and_hold_return",
}


async def test_an_arena_runs_bots_together_and_ranks_them_by_return(server, make_user, make_model):
    owner, stranger = await make_user(), await make_user()
    trader = await make_model(owner=owner)
    idle = await make_model(owner=owner, max_trades_per_day=0)  # every order rejected: it never trades
    theirs = await make_model(owner=stranger)
    async with (
        httpx.AsyncClient(base_url=server.url, headers=auth(owner["api_key"]), timeout=30) as http,
        httpx.AsyncClient(base_url=server.url, headers=auth(stranger["api_key"]), timeout=30) as other,
    ):
        refused = [
            await http.post("/arenas", json={"models": [trader["id"], theirs["id"]], "input": SESSION}),
            await http.post(
                "/arenas", json={"models": [trader["id"]], "input": {**SESSION, "symbols": ["NOPE"]}}
            ),
            await http.post("/arenas", json={"models": [trader["id"], trader["id"]], "input": SESSION}),
            await http.post(
                "/arenas", json={"models": [trader["id"]], "input": {**SESSION, "model_id": idle["id"]}}
            ),
        ]
        assert [r.status_code for r in refused] == [404, 422, 422, 422], [r.text for r in refused]
        assert "NOPE" in refused[1].json()["detail"]
        assert (await http.get("/arenas")).json() == [], "nothing was created by a refused request"

        started = await http.post("/arenas", json={"models": [trader["id"], idle["id"]], "input": SESSION})
        assert started.status_code == 200, started.text
        arena = started.json()
        assert [t["model_id"] for t in arena["threads"]] == [trader["id"], idle["id"]]
        live = (await http.get(f"/arenas/{arena['arena_id']}")).json()
        assert {s["status"] for s in live["standings"]} <= {"pending", "running", "success"}
        assert all(s["bars_total"] == 62 for s in live["standings"])
        for _ in range(300):
            board = (await http.get(f"/arenas/{arena['arena_id']}")).json()
            if all(s["status"] == "success" for s in board["standings"]):
                break
            await asyncio.sleep(0.1)
        assert (await other.get(f"/arenas/{arena['arena_id']}")).status_code == 404
        assert (await other.get(f"/arenas/{arena['arena_id']}/stream")).status_code == 404
        async with http.stream("GET", f"/arenas/{arena['arena_id']}/stream") as stream:
            events = [line async for line in stream.aiter_lines() if line.startswith("event:")]
        assert events == ["event: standings", "event: end"], "a finished arena: its final standings, then end"
        assert (await other.get("/arenas")).json() == []
        listed = (await http.get("/arenas")).json()

    assert [a["arena_id"] for a in listed] == [arena["arena_id"]] and listed[0]["input"] == SESSION
    standings = board["standings"]
    assert [set(s) for s in standings] == [FIELDS, FIELDS]
    assert all(s["status"] == "success" and s["bars_done"] == 62 for s in standings)
    by_bot = {s["model_id"]: s for s in standings}
    assert by_bot[idle["id"]]["trades"] == 0 and by_bot[idle["id"]]["total_return"] == 0
    assert by_bot[trader["id"]]["trades"] > 0 and by_bot[trader["id"]]["total_return"] != 0
    returns = [s["total_return"] for s in standings]
    assert returns == sorted(returns, reverse=True), "ranked by total return"
    assert {s["thread_id"] for s in standings} == {t["thread_id"] for t in arena["threads"]}
