"""The model page's Memory panel and its Delete button, over HTTP against the real server and database."""

from typing import Any

import httpx
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg_pool import AsyncConnectionPool

from tradegraph import memory
from tradegraph.namespaces import bot_memories, private


def console(url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30)


async def test_memory_panel_lists_newest_first_and_its_owner_deletes_an_entry(
    server: Any, make_model: Any, pool: AsyncConnectionPool
) -> None:
    model, stranger = await make_model(), await make_model()
    store = AsyncPostgresStore(pool)
    namespace = private(model["user_id"], bot_memories(model["id"]))
    for key, kind, words in (
        ("note:t1:1:0:c1", "note", "MSFT dips after earnings: buy the second day"),
        (
            "reflection:t1:1",
            "reflection",
            "Session 2012-03-01 to 2012-03-01: 0 fills; holding cash was fine.",
        ),
    ):
        await memory.remember(
            store, namespace, key=key, kind=kind, text=words, thread_id="t1", clock="2012-03-01T16:00:00"
        )
    base = f"/console/fragments/models/{model['id']}"
    async with console(server.url, model["api_key"]) as client:
        panel = await client.get(f"{base}/memory")
        assert panel.status_code == 200, panel.text
        rows = panel.text.split('data-memory-key="')[1:]
        assert [r.split('"')[0] for r in rows] == ["reflection:t1:1", "note:t1:1:0:c1"], "newest first"
        assert "MSFT dips after earnings" in rows[1] and ">note<" in rows[1] and "2012-03-01 16:00" in rows[1]
        assert ">reflection<" in rows[0] and " UTC" in rows[0]  # created, in UTC
        assert f"{base}/memory/delete" in panel.text and 'hx-vals=\'{"key": "note:t1:1:0:c1"}\'' in panel.text
        page = await client.get(base)
        assert page.status_code == 200 and 'id="bot-memory"' in page.text and "MSFT dips" in page.text

        deleted = await client.post(f"{base}/memory/delete", data={"key": "note:t1:1:0:c1"})
        assert deleted.status_code == 200, deleted.text
        assert "Deleted the memory." in deleted.text and "MSFT dips" not in deleted.text
        assert 'data-memory-key="reflection:t1:1"' in deleted.text
        assert await store.aget(namespace, "note:t1:1:0:c1") is None

        again = await client.post(f"{base}/memory/delete", data={"key": "note:t1:1:0:c1"})
        assert again.status_code == 404

    async with console(server.url, stranger["api_key"]) as client:
        assert (await client.get(f"{base}/memory")).status_code == 404
        refused = await client.post(f"{base}/memory/delete", data={"key": "reflection:t1:1"})
        assert refused.status_code == 404
    assert await store.aget(namespace, "reflection:t1:1") is not None, "a stranger deletes nothing"
