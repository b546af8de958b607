"""Real server processes for tests and benchmarks: `tradegraph serve`, `tradegraph worker`, any server."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tradegraph.settings import PROJECT_ROOT

SECRET_ENV = ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")
"""Credentials a developer's shell may hold that no server under test should see."""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with `extra` on top and the SECRET_ENV credentials removed."""
    env = {**os.environ, **extra}
    for name in SECRET_ENV:
        env.pop(name, None)
    return env


class HttpProcess:
    """A server subprocess in its own process group, its output in a log file, ready when GET /ok is 200."""

    def __init__(
        self, command: list[str], *, port: int, log_path: Path, env: dict[str, str], cwd: Path = PROJECT_ROOT
    ) -> None:
        self.port, self.url, self.log_path = port, f"http://127.0.0.1:{port}", log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60) -> "HttpProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        self.process.kill()
        self.process.wait(10)
        self._log.close()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait (SIGKILL to the group if it hangs), then reap any children; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
        self._kill_group()  # leftovers of a server that did stop
        self._log.close()
        return self.process.returncode

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if self.process.poll() is None:
            self.process.wait(10)


class ServerProcess(HttpProcess):
    """A `tradegraph serve` process against `database_url`; stop() returns its exit code."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 2,
        extra_env: dict[str, str] | None = None,
        root: Path = PROJECT_ROOT,
    ):
        """`root`: the checkout whose code the server runs (a benchmark's anchor commit, say)."""
        port = free_port()
        self.database_url = database_url
        env = clean_env({"DATABASE_URL": database_url, "TRADEGRAPH_ENV": "test", **(extra_env or {})})
        if root != PROJECT_ROOT:
            env["PYTHONPATH"] = str(root)
        command = [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", str(workers)]
        super().__init__(command, port=port, log_path=log_path, env=env, cwd=root)

    def wait_ready(self, timeout: float = 60) -> "ServerProcess":
        super().wait_ready(timeout)
        return self


def start_worker(database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """A `tradegraph worker` process (no HTTP) executing queued runs, logging to `log_path`."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--concurrency", "1"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
