"""Webhooks: a signed POST when a run ends (success or error) or pauses for approval.

A delivery is a row (`webhook_deliveries`, one per run and event, so a replayed finish sends once)
holding the exact body, and a procrastinate job that POSTs it: retried with exponential backoff when
the receiver fails, never in the run's way (the run has finished before the job is queued, and a
failure to queue is only logged). The body is signed with HMAC-SHA256 and the owner's secret
(`tradegraph users webhook-secret NAME`): `X-Tradegraph-Signature: sha256=<hex of the raw body>`.

Targets are checked when a run or cron is created (a 422 naming the webhook) and again, with the
host resolved, before every attempt: only hosts on the operator's allowlist
(`TRADEGRAPH_WEBHOOK_HOSTS`; empty allows any public host), and never a loopback, private,
link-local or reserved address unless the operator listed that very host.
"""

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from langgraph.types import StateSnapshot

from server.runs.job import RunJob
from server.runs.queue import enqueue_webhook
from server.store.runs import RunRow
from tradegraph.accounts import webhook_secret
from tradegraph.database import Pool
from tradegraph.settings import get_settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tradegraph-Signature"
TIMEOUT_S = 10.0
INSERT_DELIVERY = """
INSERT INTO webhook_deliveries (user_id, run_id, event, url, body) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (run_id, event) DO NOTHING RETURNING id
"""
SELECT_DELIVERY = "SELECT * FROM webhook_deliveries WHERE id = %s"
RECORD_ATTEMPT = """
UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = %s, last_error = %s,
       delivered_at = CASE WHEN %s THEN now() ELSE delivered_at END
WHERE id = %s
"""


class WebhookRefused(ValueError):
    """The URL is not one this server may call; the message says why."""


def allowed_hosts() -> list[str]:
    """The operator's allowlist (lower-case hosts; `*.example.com` matches subdomains)."""
    raw = get_settings().webhook_hosts
    return [h.strip().lower() for h in raw.split(",") if h.strip()]


def _listed(host: str, allowed: list[str]) -> bool:
    return any(host == a or (a.startswith("*.") and host.endswith(a[1:])) for a in allowed)


def check_target(url: str) -> str:
    """The URL when its scheme and host may be called (before any DNS lookup); else WebhookRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"webhook must be an http(s) URL with a host, got {url!r}")
    host, allowed = parts.hostname.lower(), allowed_hosts()
    if allowed and not _listed(host, allowed):
        listed = ", ".join(allowed)
        raise WebhookRefused(f"webhook host {host!r} is not in TRADEGRAPH_WEBHOOK_HOSTS ({listed})")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if _private(address) and not _listed(host, allowed):
        raise WebhookRefused(
            f"webhook host {host} is a private or loopback address; the operator must list it"
        )
    return url


async def check_resolved(url: str) -> None:
    """Before an attempt: every address the host resolves to must be public, unless the host is listed."""
    host = (urlsplit(url).hostname or "").lower()
    check_target(url)
    if _listed(host, allowed_hosts()):
        return
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _private(address):
            raise WebhookRefused(f"webhook host {host} resolves to {address}, a private or loopback address")


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the HMAC-SHA256 of the raw body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run_event(*, error: dict[str, str] | None, snapshot: StateSnapshot | None) -> str:
    """`run.error`, `run.interrupted` (paused for approval) or `run.success`."""
    if error is not None or snapshot is None:
        return "run.error"
    return "run.interrupted" if snapshot.interrupts else "run.success"


def payload(
    run: RunRow, *, model_id: int | None, error: dict[str, str] | None, snapshot: StateSnapshot | None
) -> dict[str, Any]:
    """What the receiver gets: the run, its thread and model, its status, and the paused order or error."""
    event = run_event(error=error, snapshot=snapshot)
    values = (snapshot.values if snapshot is not None else None) or {}
    paused = [i.value for i in snapshot.interrupts] if snapshot is not None else []
    return {
        "event": event,
        "run_id": str(run["run_id"]),
        "thread_id": str(run["thread_id"]),
        "assistant_id": str(run["assistant_id"]),
        "model_id": model_id,
        "status": {"run.error": "error", "run.interrupted": "interrupted", "run.success": "success"}[event],
        "error": error,
        "paused_order": paused[0] if paused else None,
        "bars": {"done": values["bar_index"] + 1, "total": values.get("bars_total")}
        if "bar_index" in values
        else None,
        "portfolio": values.get("portfolio"),
        "metadata": run["metadata"],
        "sent_at": datetime.now(UTC).isoformat(),
    }


class WebhookOutbox:
    """Records deliveries when runs end and sends them from the queue."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def run_ended(
        self, run: RunRow, *, error: dict[str, str] | None, snapshot: StateSnapshot | None
    ) -> None:
        """Queue the run's webhook, if it has one; never raises (the run has ended either way)."""
        job = RunJob.model_validate(run["kwargs"])
        url = job.webhook
        if not url:
            return
        values = (snapshot.values if snapshot is not None else None) or {}
        model_id = values.get("model_id") or (job.input or {}).get("model_id")
        body = json.dumps(payload(run, model_id=model_id, error=error, snapshot=snapshot), default=str)
        event = run_event(error=error, snapshot=snapshot)
        try:
            async with self.pool.connection() as conn:
                params = (run["user_id"], run["run_id"], event, url, body)
                row = await (await conn.execute(INSERT_DELIVERY, params)).fetchone()
            if row is not None:
                await enqueue_webhook(delivery_id=row["id"])
        except Exception as exc:
            log.warning("run %s: webhook %s not queued: %s", run["run_id"], event, exc)

    async def deliver(self, delivery_id: int) -> None:
        """One attempt; raises when the receiver did not take it, so the queue retries with backoff."""
        async with self.pool.connection() as conn:
            delivery = await (await conn.execute(SELECT_DELIVERY, (delivery_id,))).fetchone()
            if delivery is None or delivery["delivered_at"] is not None:
                return
            secret = await webhook_secret(conn, user_id=delivery["user_id"])
        body = delivery["body"].encode()
        status, failure = None, None
        try:
            await check_resolved(delivery["url"])
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
            async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
                response = await client.post(delivery["url"], content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                failure = f"the receiver answered {status}"
        except WebhookRefused as exc:
            failure = str(exc)
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        async with self.pool.connection() as conn:
            await conn.execute(RECORD_ATTEMPT, (status, failure, failure is None, delivery_id))
        if failure is not None:
            raise DeliveryFailed(f"webhook {delivery_id} to {delivery['url']}: {failure}")


class DeliveryFailed(Exception):
    """An attempt that the queue retries with backoff."""
