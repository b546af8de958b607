"""Unauthenticated meta routes: liveness, readiness, metrics and server info."""

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

import tradegraph
from server.deps import ServicesDep
from server.health import readiness
from server.metrics import exposition

router = APIRouter(tags=["meta"])


@router.get("/ok")
async def ok() -> dict[str, Any]:
    """Liveness."""
    return {"ok": True, "services": {}}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Readiness: 200 when runs can be served, 503 naming each failed check (for load balancers, probes)."""
    checks = await readiness(services)
    failed = {name: reason for name, reason in checks.items() if reason != "ok"}
    if failed:
        detail = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
        return JSONResponse({"ready": False, "detail": detail, "checks": checks}, status_code=503)
    return JSONResponse({"ready": True, "checks": checks})


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    running = services.worker is not None and services.worker.health.running
    return Response(await exposition(services.pool, worker_running=running), media_type=CONTENT_TYPE_LATEST)


@router.get("/info")
async def info() -> dict[str, Any]:
    """Versions and feature flags, in the shape langgraph-sdk and Studio read."""
    return {
        "version": tradegraph.__version__,
        "langgraph_py_version": version("langgraph"),
        "flags": {"assistants": True, "crons": True, "langsmith": False},
        "host": {
            "kind": "self-hosted",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
    }
