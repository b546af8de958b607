"""`langgraph dev` beside tradegraph: its own venv (never a project dependency), config, and process."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.server import HttpProcess, clean_env, free_port
from tradegraph.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / ".tradegraph"
BENCH_VENV = DATA_DIR / "bench-venv"
BENCH_VENV_STAMP = BENCH_VENV / ".tradegraph-bench-installed"
HOME = DATA_DIR / "bench-langgraph-dev"
"""Working directory of `langgraph dev`, so its `.langgraph_api/` state stays out of the checkout."""
INSTALL_TIMEOUT_S = 1200.0


def ensure_venv(log_dir: Path) -> Path:
    """`.tradegraph/bench-venv` with langgraph-cli[inmem] and this repo (editable); reused if present."""
    if BENCH_VENV_STAMP.exists() and (BENCH_VENV / "bin" / "langgraph").exists():
        return BENCH_VENV
    print(f"[bench] creating {BENCH_VENV} (installing langgraph-cli[inmem] takes a minute)", file=sys.stderr)
    log_path = log_dir / "bench-venv-install.log"
    python = str(BENCH_VENV / "bin" / "python")
    constraints = str(PROJECT_ROOT / "constraints.txt")
    steps = [
        [sys.executable, "-m", "venv", str(BENCH_VENV)],
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        # One resolve for both, pinned like the project's own venv so the graph runs the same code.
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            constraints,
            "langgraph-cli[inmem]",
            "-e",
            str(PROJECT_ROOT),
        ],
    ]
    log_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        for step in steps:
            log.write(f"$ {' '.join(step)}\n")
            log.flush()
            code = subprocess.run(
                step, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
            ).returncode
            if code != 0:
                raise RuntimeError(f"bench venv step failed ({code}): {' '.join(step)}; see {log_path}")
    BENCH_VENV_STAMP.write_text("langgraph-cli[inmem] and tradegraph (editable) installed\n")
    return BENCH_VENV


def installed_version(venv: Path, package: str) -> str:
    """A package's version inside the bench venv, for the report."""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() or "?"


def start(database_url: str, venv: Path, log_path: Path, env: dict[str, str]) -> HttpProcess:
    """`langgraph dev` from the bench venv serving this repo's graph, on a free port, from no threads."""
    port = free_port()
    config = write_config()
    shutil.rmtree(HOME / ".langgraph_api", ignore_errors=True)
    command = [
        str(venv / "bin" / "langgraph"),
        "dev",
        "--no-browser",
        "--no-reload",
        "--n-jobs-per-worker",
        "10",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config),
    ]
    process_env = clean_env({**env, "DATABASE_URL": database_url})
    process_env.pop("VIRTUAL_ENV", None)
    return HttpProcess(command, port=port, log_path=log_path, env=process_env, cwd=HOME)


def write_config() -> Path:
    """This repo's langgraph.json with its paths made absolute, in HOME.

    `langgraph dev` resolves graph files, dependencies and the env file against its working
    directory and keeps its state in `./.langgraph_api/`; running it from HOME with absolute paths
    serves the same graph without writing into the checkout.
    """
    config = json.loads((PROJECT_ROOT / "langgraph.json").read_text())
    config["dependencies"] = [_absolute(dep) for dep in config.get("dependencies", [])]
    config["graphs"] = {gid: _absolute_graph(spec) for gid, spec in config.get("graphs", {}).items()}
    if isinstance(config.get("env"), str):
        config["env"] = _absolute(config["env"])
    HOME.mkdir(parents=True, exist_ok=True)
    path = HOME / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _absolute(path: str) -> str:
    return str((PROJECT_ROOT / path).resolve()) if path.startswith((".", "/")) else path


def _absolute_graph(spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(spec.get("path"), str):
        return {**spec, "path": _absolute_graph(spec["path"])}
    if isinstance(spec, str) and ".py:" in spec:
        file, _, variable = spec.rpartition(":")
        return f"{_absolute(file)}:{variable}"
    return spec
