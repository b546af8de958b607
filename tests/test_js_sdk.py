"""The official JavaScript client (`@langchain/langgraph-sdk`, pinned in tests/js) against the real server.

It streams a session (`runs.stream` with `custom` and `updates`), rejoins it from an event id
(`runs.joinStream` with `lastEventId`) and reads the thread's state, all unchanged. Needs Node.js
and npm (the package is installed from the npm registry into `.tradegraph/js-sdk` once per lock
file); on a machine without them the test is skipped and says so.
"""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.ledger_checks import assert_reconciles
from tests.test_concurrency import A_QUARTER, BARS
from tradegraph.settings import PROJECT_ROOT

SOURCES = PROJECT_ROOT / "tests" / "js"
FILES = ("package.json", "package-lock.json", "follow_session.mjs")


@pytest.fixture(scope="module")
def js_client() -> Path:
    """A directory with the pinned JavaScript client installed and the script beside it."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js and npm are not installed: the JavaScript client cannot be checked here")
    target = PROJECT_ROOT / ".tradegraph" / "js-sdk"
    installed = target / "node_modules" / ".package-lock.json"
    lock = (SOURCES / "package-lock.json").read_text()
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(SOURCES / name, target / name)
    if not installed.exists() or (target / ".installed-lock").read_text() != lock:
        subprocess.run(
            ["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=target, check=True, timeout=300
        )
        (target / ".installed-lock").write_text(lock)
    return target


async def test_the_javascript_client_streams_rejoins_and_reads_a_session(
    js_client, server, make_user, make_model, pool
):
    owner = await make_user()
    model = await make_model(owner=owner)
    arguments = (server.url, owner["api_key"], str(model["id"]), json.dumps(A_QUARTER))
    node = await asyncio.create_subprocess_exec(
        "node",
        "follow_session.mjs",
        *arguments,
        cwd=js_client,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), timeout=180)
    assert node.returncode == 0, err.decode()[-3000:]
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen["counts"]["metadata"] == 1
    assert seen["equity"] == BARS  # one equity event per bar, none lost or repeated
    assert seen["counts"]["updates"] >= 4  # start, decide, risk_check, execute ...
    assert seen["rejoined"] == sum(seen["counts"].values()) - 3  # everything after event 3
    assert seen["values"]["done"] is True
    assert seen["values"]["signature"] == model["signature"]
    await assert_reconciles(pool, model["id"])
