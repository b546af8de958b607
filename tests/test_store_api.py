"""The store routes through langgraph-sdk's `client.store`, against a real server: items and namespaces
are private to their user, and what is stored really sits under ("users", "<id>")."""

import httpx
import pytest
from langgraph_sdk import get_client

STORED_PREFIXES = "SELECT prefix FROM store WHERE key = %s ORDER BY prefix"


async def test_put_get_search_list_and_delete(server, make_user):
    user = await make_user()
    store = get_client(url=server.url, api_key=user["api_key"]).store
    await store.put_item(["notes", "aapl"], key="thesis", value={"text": "buy dips", "conviction": 3})
    await store.put_item(["notes", "msft"], key="thesis", value={"text": "hold", "conviction": 1})
    await store.put_item(["notes", "msft", "2012"], key="q1", value={"text": "earnings", "conviction": 2})
    await store.put_item(["prefs"], key="ui", value={"theme": "dark"})

    item = await store.get_item(["notes", "aapl"], key="thesis")
    assert item["namespace"] == ["notes", "aapl"] and item["key"] == "thesis"
    assert item["value"] == {"text": "buy dips", "conviction": 3}
    assert item["created_at"] and item["updated_at"]

    await store.put_item(["notes", "aapl"], key="thesis", value={"text": "sell rips", "conviction": 3})
    assert (await store.get_item(["notes", "aapl"], key="thesis"))["value"]["text"] == "sell rips"

    found = (await store.search_items(["notes"], limit=10))["items"]
    assert sorted((tuple(i["namespace"]), i["key"]) for i in found) == [
        (("notes", "aapl"), "thesis"),
        (("notes", "msft"), "thesis"),
        (("notes", "msft", "2012"), "q1"),
    ]
    filtered = (await store.search_items(["notes"], filter={"conviction": 3}))["items"]
    assert [(i["namespace"], i["value"]["text"]) for i in filtered] == [(["notes", "aapl"], "sell rips")]
    above_one = (await store.search_items([], filter={"conviction": {"$gt": 1}}))["items"]
    assert sorted(i["key"] for i in above_one) == ["q1", "thesis"]
    assert len((await store.search_items([], limit=2))["items"]) == 2

    everything = (await store.list_namespaces())["namespaces"]
    assert sorted(everything) == [["notes", "aapl"], ["notes", "msft"], ["notes", "msft", "2012"], ["prefs"]]
    assert (await store.list_namespaces(prefix=["notes"], max_depth=2))["namespaces"] == [
        ["notes", "aapl"],
        ["notes", "msft"],
    ]
    assert (await store.list_namespaces(max_depth=1))["namespaces"] == [["notes"], ["prefs"]]
    assert (await store.list_namespaces(suffix=["msft"]))["namespaces"] == [["notes", "msft"]]
    # a suffix longer than a namespace does not reach into the hidden ("users", "<id>") labels
    assert (await store.list_namespaces(suffix=["*", "prefs"]))["namespaces"] == []
    assert (await store.list_namespaces(suffix=[str(user["id"]), "prefs"]))["namespaces"] == []

    await store.delete_item(["notes", "aapl"], key="thesis")
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await store.get_item(["notes", "aapl"], key="thesis")
    assert missing.value.response.status_code == 404
    assert ["notes", "aapl"] not in (await store.list_namespaces())["namespaces"]


async def test_two_users_with_the_same_namespaces_and_keys_stay_apart(server, make_user, pool):
    alice, bob = await make_user(), await make_user()
    stores = {who["id"]: get_client(url=server.url, api_key=who["api_key"]).store for who in (alice, bob)}
    for who in (alice, bob):
        await stores[who["id"]].put_item(["memories"], key="shared-key", value={"owner": who["name"]})

    for who in (alice, bob):
        store = stores[who["id"]]
        assert (await store.get_item(["memories"], key="shared-key"))["value"] == {"owner": who["name"]}
        found = (await store.search_items([]))["items"]
        assert [(i["namespace"], i["value"]) for i in found] == [(["memories"], {"owner": who["name"]})]
        assert (await store.list_namespaces())["namespaces"] == [["memories"]]

    await stores[bob["id"]].delete_item(["memories"], key="shared-key")
    assert (await stores[alice["id"]].get_item(["memories"], key="shared-key"))["value"]["owner"] == alice[
        "name"
    ]

    async with pool.connection() as conn:
        rows = await (await conn.execute(STORED_PREFIXES, ("shared-key",))).fetchall()
    assert [row["prefix"] for row in rows] == [f"users.{alice['id']}.memories"]


async def test_namespaces_are_stored_under_the_user(server, make_user, pool):
    user = await make_user()
    store = get_client(url=server.url, api_key=user["api_key"]).store
    await store.put_item(["a", "b"], key="where-stored", value={"x": 1})
    async with pool.connection() as conn:
        rows = await (await conn.execute(STORED_PREFIXES, ("where-stored",))).fetchall()
    assert [tuple(row["prefix"].split(".")) for row in rows] == [("users", str(user["id"]), "a", "b")]


async def test_bad_input_is_a_422_naming_the_field(server, make_user):
    user = await make_user()
    headers = {"x-api-key": user["api_key"]}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        dotted = await http.put("/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}})
        assert dotted.status_code == 422
        assert "namespace.0" in dotted.json()["detail"] and "'.'" in dotted.json()["detail"]

        cases = [
            ({"namespace": ["a", ""], "key": "k", "value": {}}, "namespace.1"),
            ({"namespace": [], "key": "k", "value": {}}, "namespace"),
            ({"namespace": ["a"], "value": {}}, "key"),
            ({"namespace": ["a"], "key": "k", "value": [1, 2]}, "value"),
        ]
        for body, field in cases:
            answer = await http.put("/store/items", json=body)
            assert answer.status_code == 422 and answer.json()["detail"].startswith(field), answer.text

        limit = await http.post("/store/items/search", json={"namespace_prefix": [], "limit": 0})
        assert limit.status_code == 422 and limit.json()["detail"].startswith("limit")
        operator = await http.post("/store/items/search", json={"filter": {"x": {"$regex": "a"}}})
        assert operator.status_code == 422 and "$regex" in operator.json()["detail"]
        depth = await http.post("/store/namespaces", json={"max_depth": 0})
        assert depth.status_code == 422 and depth.json()["detail"].startswith("max_depth")
        get_dotted = await http.get("/store/items", params={"namespace": "a..b", "key": "k"})
        assert get_dotted.status_code == 422 and get_dotted.json()["detail"].startswith("namespace")

        assert (
            await http.put(
                "/store/items",
                json={"namespace": ["a"], "key": "k", "value": {}},
                headers={"x-api-key": "nope"},
            )
        ).status_code == 401
