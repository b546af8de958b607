"""First bars first (server/runs/priority.py): newcomers start up a few at a time, in order, and
sessions past their first bar give way to them."""

import asyncio

import pytest

from server.runs import priority
from server.runs.priority import FirstBars


async def test_newcomers_take_turns_in_the_order_they_came():
    first_bars = FirstBars()
    admitted: list[int] = []

    async def newcomer(n: int) -> None:
        arrival = await first_bars.starting()
        admitted.append(n)
        await asyncio.sleep(0.01)  # its start-up
        arrival.arrived()

    await asyncio.gather(*(newcomer(n) for n in range(3 * priority.STARTING_AT_ONCE)))
    assert admitted == list(range(3 * priority.STARTING_AT_ONCE))


async def test_only_so_many_start_up_at_once():
    first_bars = FirstBars()
    held = [await first_bars.starting() for _ in range(priority.STARTING_AT_ONCE)]
    late = asyncio.create_task(first_bars.starting())
    await asyncio.sleep(0.05)
    assert not late.done(), "a turn opens only when a newcomer has shown its first bar"
    held[0].arrived()
    held[0].arrived()  # arriving twice frees one turn, not two
    (await asyncio.wait_for(late, 1)).arrived()
    for arrival in held[1:]:
        arrival.arrived()


async def test_an_established_session_waits_for_a_newcomers_first_bar():
    first_bars = FirstBars()
    established = await first_bars.starting()
    established.arrived()
    await asyncio.wait_for(established.give_way(), 0.05)  # nobody new: no wait
    newcomer = await first_bars.starting()
    await asyncio.wait_for(newcomer.give_way(), 0.05)  # a newcomer never waits, not even for itself
    waiting = asyncio.create_task(established.give_way())
    await asyncio.sleep(0.05)
    assert not waiting.done(), "it gives way while a newcomer is before its first bar"
    newcomer.arrived()
    await asyncio.wait_for(waiting, 0.5)


async def test_giving_way_and_being_new_are_both_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(priority, "MAX_WAIT_S", 0.05)
    monkeypatch.setattr(priority, "NEWCOMER_S", 0.2)
    first_bars = FirstBars()
    established = await first_bars.starting()
    established.arrived()
    await first_bars.starting()  # never shows a bar (an llm session waiting on its model)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await established.give_way()
    assert 0.04 <= loop.time() - began < 0.15, "one wait lasts at most MAX_WAIT_S"
    await asyncio.sleep(0.2)
    began = loop.time()
    await established.give_way()
    assert loop.time() - began < 0.02, "after NEWCOMER_S the run no longer counts as new"
