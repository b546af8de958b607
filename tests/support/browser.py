"""Headless Chromium for the console tests: Debian's `chromium`, installed when missing, driven by Playwright.

Playwright's own browser downloads are never used (there is no network here but the package mirrors).
"""

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANDIDATES = ("chromium", "chromium-browser")


def find_chromium() -> Path | None:
    """The system Chromium, if one is installed."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def ensure_chromium() -> Path:
    """The system Chromium, installing Debian's package first when it is missing (we run as root)."""
    found = find_chromium()
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    found = find_chromium()
    if found is None:
        raise RuntimeError("apt-get installed chromium but no chromium binary is on PATH")
    return found
