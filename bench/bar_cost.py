"""What one bar costs one Python process, without the server: a session run in-process.

Runs a 62-bar daily session (AAPL, MSFT, IBM, `rule` decider) three times after a warm-up, with
the graph compiled over the Postgres checkpointer, and prints wall and CPU milliseconds per bar
for `durability="async"` (the default: a checkpoint per step, saved in the background) and
`durability="exit"` (checkpoints only when the run stops), so the checkpoints' share is visible.
CPU time is the process's (all threads); PostgreSQL's own time is not in it.

    .venv/bin/python bench/bar_cost.py
"""

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests/, bench/

from graph.builder import persistent_graph  # noqa: E402
from graph.config import run_config  # noqa: E402
from graph.context import SessionContext  # noqa: E402
from tests.support.accounts import owner_and_model  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402
from tests.support.sessions import input_for  # noqa: E402
from tradegraph.database import Pool, make_pool  # noqa: E402

BARS = 62
REPEATS = 3


async def one_session(pool: Pool, model: dict[str, Any], durability: str) -> int:
    graph = persistent_graph(pool)
    bars = 0
    async for part in graph.astream(
        input_for(model),
        run_config(str(uuid.uuid4()), bars_total=BARS),
        context=SessionContext(pool=pool),
        stream_mode="custom",
        durability=durability,  # type: ignore[arg-type]
        version="v2",
    ):
        bars += part["type"] == "custom" and part["data"].get("type") == "equity"
    return bars


async def measure(url: str) -> None:
    _, model = await owner_and_model(url)
    pool = make_pool(url, max_size=10)
    await pool.open()
    try:
        await one_session(pool, model, "async")  # warm the price cache and the connections
        for durability in ("async", "exit"):
            wall, cpu = time.perf_counter(), time.process_time()
            bars = sum([await one_session(pool, model, durability) for _ in range(REPEATS)])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"durability={durability:5}  {bars} bars  wall {wall * 1000 / bars:.2f} ms/bar  "
                f"cpu {cpu * 1000 / bars:.2f} ms/bar"
            )
    finally:
        await pool.close()


def main() -> None:
    with fresh_database("tradegraph_bench") as url:
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()
