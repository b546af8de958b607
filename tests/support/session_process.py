"""Run or resume one session in a separate process, optionally dying by SIGKILL mid-execute.

Usage: python -m tests.support.session_process '{"url": ..., "thread_id": ..., "input": {...}}'
Keys: `input` (a session request) or `resume` (a Command resume value) or neither (continue);
`kill_after_fills`: SIGKILL this process right after that many fills were committed;
`kill_after_resting_fills`: the same, counting only fills of orders that rested in the book.
"""

import asyncio
import json
import os
import signal
import sys
from typing import Any

from langgraph.types import Command

from graph.builder import persistent_graph
from graph.config import run_config
from graph.context import SessionContext
from tradegraph.database import make_pool


async def main(job: dict[str, Any]) -> None:
    pool = make_pool(job["url"])
    await pool.open()
    payload: Any = job.get("input")
    if "resume" in job:
        payload = Command(resume=job["resume"])
    filled = resting = 0
    graph = persistent_graph(pool)
    config = run_config(job["thread_id"], bars_total=400)
    async for part in graph.astream(
        payload, config, context=SessionContext(pool=pool), stream_mode="custom", version="v2"
    ):
        event = part["data"]
        if event.get("type") == "fill" and event["status"] == "filled":
            filled += 1
            resting += event.get("order_type", "market") != "market"
            if filled == job.get("kill_after_fills") or resting == job.get("kill_after_resting_fills"):
                os.kill(os.getpid(), signal.SIGKILL)
    state = await graph.aget_state(config)
    print(json.dumps({"interrupted": bool(state.interrupts), "done": state.values.get("done", False)}))
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
