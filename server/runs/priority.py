"""First bars first: the runs of a process that have not streamed a bar yet go before the others.

When 100 sessions start at once, interleaving them all step by step makes every client wait for
every other session's start-up before it sees a bar. Instead, runs start up a few at a time
(STARTING_AT_ONCE), in the order they were taken, and a session past its first bar gives way
(`Newcomer.give_way`, awaited by `decide` before each bar and by `hold` between quiet bars) while
any run of the process is still before its first bar. A wait is capped at MAX_WAIT_S per bar, so a
steady stream of new sessions slows the others down but never stops them, and a run counts as a
newcomer for at most NEWCOMER_S (an `llm` session waiting seconds for its model must not hold the
others back).
"""

import asyncio
from contextlib import suppress

STARTING_AT_ONCE = 4
"""Runs of a process starting up together (the rest queue for a turn, in order)."""
MAX_WAIT_S = 1.0
"""Longest a session past its first bar waits for newcomers, per bar."""
NEWCOMER_S = 2.0
"""Longest a run counts as before its first bar once its start-up has begun."""


class FirstBars:
    """This process's runs that have not streamed their first bar yet."""

    def __init__(self) -> None:
        self._before = 0
        self._none_before = asyncio.Event()
        self._none_before.set()
        self._turns = asyncio.Semaphore(STARTING_AT_ONCE)

    async def starting(self) -> "Newcomer":
        """A run begins: wait for a turn to start up; it is a newcomer until `Newcomer.arrived`."""
        self._before += 1
        self._none_before.clear()
        newcomer = Newcomer(self)
        try:
            await self._turns.acquire()
        except BaseException:
            newcomer.arrived(holds_turn=False)
            raise
        asyncio.get_running_loop().call_later(NEWCOMER_S, newcomer.arrived)
        return newcomer

    def _arrived(self, *, release: bool) -> None:
        if release:
            self._turns.release()
        self._before -= 1
        if self._before == 0:
            self._none_before.set()

    async def _give_way(self) -> None:
        if self._none_before.is_set():
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(self._none_before.wait(), MAX_WAIT_S)


class Newcomer:
    """One run before its first bar; `arrived` (once, however often it is called) ends that."""

    def __init__(self, first_bars: FirstBars) -> None:
        self._process = first_bars
        self._first_bars: FirstBars | None = first_bars

    async def give_way(self) -> None:
        """Once past its first bar, wait (at most MAX_WAIT_S) while any run of the process is before
        its first; before it, go on at once."""
        if self._first_bars is None:
            await self._process._give_way()

    def arrived(self, *, holds_turn: bool = True) -> None:
        """Its first bar is out (or its run ended, or NEWCOMER_S passed): free its turn, if it has one."""
        if self._first_bars is not None:
            self._first_bars._arrived(release=holds_turn)
            self._first_bars = None
