"""Unauthenticated meta routes: liveness and server info."""

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter

import tradegraph

router = APIRouter(tags=["meta"])


@router.get("/ok")
async def ok() -> dict[str, Any]:
    """Liveness."""
    return {"ok": True, "services": {}}


@router.get("/info")
async def info() -> dict[str, Any]:
    """Versions and feature flags, in the shape langgraph-sdk and Studio read."""
    return {
        "version": tradegraph.__version__,
        "langgraph_py_version": version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {
            "kind": "self-hosted",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
    }
