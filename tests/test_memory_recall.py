"""recall over the store alone: word matching, newest first, and no look-ahead in a backtest."""

from langgraph.store.memory import InMemoryStore

from tradegraph import memory

SPACE = ("users", "1", "bots", "7", "memories")


async def test_a_session_recalls_only_what_was_written_at_or_before_its_clock():
    store = InMemoryStore()
    for key, clock, text in [
        ("a", "2012-03-01T16:00:00", "AAPL broke out; buying worked"),
        ("b", "2013-06-28T16:00:00", "AAPL fell 30% since 2012: avoid it"),
        ("c", "2012-05-01T16:00:00", "MSFT flat"),
    ]:
        await memory.remember(store, SPACE, key=key, kind="note", text=text, thread_id="t", clock=clock)
    everything = await memory.recall(store, SPACE, "aapl")
    assert {m["key"] for m in everything} == {"a", "b"}
    in_2012 = await memory.recall(store, SPACE, "AAPL", as_of="2012-12-31T16:00:00")
    assert [m["key"] for m in in_2012] == ["a"], "a 2012 backtest must not read what 2013 taught"
    assert {m["key"] for m in await memory.newest(store, SPACE, limit=5, as_of="2012-05-01T16:00:00")} == {
        "a",
        "c",
    }
    assert await memory.recall(store, SPACE, "AAPL avoid", as_of="2013-06-28T16:00:00") == [
        m for m in everything if m["key"] == "b"
    ]
