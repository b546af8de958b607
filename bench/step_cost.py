"""Where a one-bar session's time goes in one process: each node, and LangGraph's loop between them.

Runs a one-bar daily session (AAPL, 2012-01-03, `rule` decider) in-process over the Postgres
checkpointer, its checkpoints saved in batches as the run executor saves them, N times after a
warm-up, and prints the median wall and CPU milliseconds of each stretch: the graph's set-up up to
`start` (its empty checkpoint read and input step), each node, each hand-over from one node to the
next (LangGraph's step loop: the step's writes, its checkpoint, the edge, the next task), the end of
the graph, and the final save of the batch. The server adds the HTTP request, the queue and the
events to this (bench/runs_wait.py measures all of it). The nodes are timed by wrapping the
functions `graph/builder.py` adds, before the graph is built.

    .venv/bin/python bench/step_cost.py                 # 200 sessions
    .venv/bin/python bench/step_cost.py --runs 500 --durability exit
"""

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests/, bench/

import graph.builder as builder  # noqa: E402
from graph.checkpointer import batched_saves  # noqa: E402
from graph.config import run_config  # noqa: E402
from graph.context import SessionContext  # noqa: E402
from tests.support.accounts import owner_and_model  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402
from tests.support.sessions import input_for  # noqa: E402
from tradegraph.database import Pool, make_pool  # noqa: E402

ONE_BAR = {"start": "2012-01-03", "end": "2012-01-03", "symbols": ["AAPL"]}
NODES = ("start", "decide", "risk_check", "execute", "reflect")
Mark = tuple[str, float, float]


class Clock:
    """Marks (name, wall s, CPU s of this thread) of one session, in order."""

    def __init__(self) -> None:
        self.marks: list[Mark] = []

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter(), time.thread_time()))

    def timed(self, name: str, node: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @wraps(node)
        async def run(*args: Any, **kwargs: Any) -> Any:
            self.mark(f"{name}>")
            try:
                return await node(*args, **kwargs)
            finally:
                self.mark(f"{name}<")

        return run


async def one_session(pool: Pool, graph: Any, model: dict[str, Any], clock: Clock, durability: str) -> None:
    thread_id = str(uuid.uuid4())
    clock.marks.clear()
    clock.mark("begin")
    async with batched_saves(graph.checkpointer, thread_id, durability=durability):
        async for _ in graph.astream(
            input_for(model, **ONE_BAR),
            run_config(thread_id, bars_total=1),
            context=SessionContext(pool=pool),
            stream_mode="custom",
            durability=durability,
            version="v2",
        ):
            pass
        clock.mark("graph end")
    clock.mark("saved")


async def measure(url: str, runs: int, durability: str) -> None:
    clock = Clock()
    for name in NODES:
        setattr(builder, name, clock.timed(name, getattr(builder, name)))
    _, model = await owner_and_model(url)
    pool = make_pool(url)
    await pool.open()
    try:
        graph = builder.persistent_graph(pool)
        for _ in range(10):  # warm the price cache, the connections and the prepared statements
            await one_session(pool, graph, model, clock, durability)
        walls: dict[str, list[float]] = defaultdict(list)
        cpus: dict[str, list[float]] = defaultdict(list)
        for _ in range(runs):
            await one_session(pool, graph, model, clock, durability)
            for (a, wall_a, cpu_a), (b, wall_b, cpu_b) in zip(clock.marks, clock.marks[1:], strict=False):
                walls[f"{a} .. {b}"].append((wall_b - wall_a) * 1000)
                cpus[f"{a} .. {b}"].append((cpu_b - cpu_a) * 1000)
    finally:
        await pool.close()
    print(f"one-bar session in-process, durability={durability}, medians of {runs} runs (ms)")
    print(f"{'stretch':28} {'wall':>7} {'CPU':>7}")
    for stretch in walls:
        wall, cpu = statistics.median(walls[stretch]), statistics.median(cpus[stretch])
        print(f"{stretch:28} {wall:7.2f} {cpu:7.2f}")
    wall = sum(map(statistics.median, walls.values()))
    cpu = sum(map(statistics.median, cpus.values()))
    print(f"{'sum of the medians':28} {wall:7.2f} {cpu:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--durability", choices=["async", "exit", "sync"], default="async")
    args = parser.parse_args()
    with fresh_database("tradegraph_bench") as url:
        asyncio.run(measure(url, args.runs, args.durability))


if __name__ == "__main__":
    main()
