"""`tradegraph users keys create|list|revoke` and `tradegraph users webhook-secret`, on the database.

A failure (unknown user or prefix, a bad date) is one line on stderr and exit code 1.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from tradegraph.accounts import User
    from tradegraph.keys import IssuedKey, KeyRow

T = TypeVar("T")
keys_app = typer.Typer(help="Issue, list and revoke a user's API keys.", no_args_is_help=True)
COLUMNS = ("prefix", "label", "created", "expires", "last used", "revoked")


class Refused(Exception):
    """What to tell the operator instead of doing the command."""


def fail(message: str) -> typer.Exit:
    """Print the one-line reason on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


async def _as_user(name: str, body: Callable[["AsyncConnection[Any]", "User"], Awaitable[T]]) -> T:
    """Run `body` with a connection and the named user; Refused when there is no such user."""
    import psycopg
    from psycopg.rows import dict_row

    from tradegraph.accounts import user_by_name
    from tradegraph.bootstrap import prepare_database
    from tradegraph.database import database_url

    url = database_url()
    await prepare_database(url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        user = await user_by_name(conn, name=name)
        if user is None:
            raise Refused(f"no user named {name!r}; create it with `tradegraph users create {name}`")
        return await body(conn, user)


def _run(name: str, body: Callable[["AsyncConnection[Any]", "User"], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_as_user(name, body))
    except Refused as exc:
        raise fail(str(exc)) from None


def _expiry(text: str | None) -> datetime | None:
    """`--expires-at` as an aware time in the future (no offset: UTC)."""
    from tradegraph.keys import checked_expiry

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"bad --expires-at {text!r}: expected ISO-8601, e.g. 2027-01-31 or 2027-01-31T17:00Z"
        ) from None
    try:
        return checked_expiry(moment)
    except ValueError as exc:
        raise fail(f"bad --expires-at: {exc}") from None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def key_table(rows: "list[KeyRow]") -> list[str]:
    """The keys as aligned lines under a header (times in UTC)."""
    cells = [
        (
            r["prefix"],
            r["label"],
            *map(_when, (r["created_at"], r["expires_at"], r["last_used_at"], r["revoked_at"])),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        for line in [COLUMNS, *cells]
    ]


@keys_app.command("create")
def create(
    name: str,
    label: Annotated[str, typer.Option(help="What the key is for, 1-100 characters.")] = "default",
    expires_at: Annotated[
        str | None, typer.Option(help="ISO-8601 date or time it stops working (no offset: UTC).")
    ] = None,
) -> None:
    """Issue another key for a user; prints the key alone on the last line (shown only this once)."""
    from tradegraph.keys import add_key

    label = label.strip()
    if not 1 <= len(label) <= 100:
        raise fail("--label must be 1 to 100 characters")
    expiry = _expiry(expires_at)

    async def issue(conn: "AsyncConnection[Any]", user: "User") -> "IssuedKey":
        return await add_key(conn, user_id=user.id, label=label, expires_at=expiry)

    issued = _run(name, issue)
    until = f", expires {_when(issued.expires_at)} UTC" if issued.expires_at else ""
    typer.echo(
        f"key {issued.prefix} ({issued.label!r}{until}) for {name!r}; store it now, it is not shown again:"
    )
    typer.echo(issued.key)


@keys_app.command("list")
def list_(name: str) -> None:
    """A user's keys, revoked and expired ones included: prefix, label and times (UTC)."""
    from tradegraph.keys import list_keys

    async def listed(conn: "AsyncConnection[Any]", user: "User") -> "list[KeyRow]":
        return await list_keys(conn, user_id=user.id)

    for line in key_table(_run(name, listed)):
        typer.echo(line)


@keys_app.command("revoke")
def revoke(name: str, prefix: str) -> None:
    """Revoke a user's key by its prefix: every request with it is refused from now on."""
    from tradegraph.keys import revoke_key

    async def revoked(conn: "AsyncConnection[Any]", user: "User") -> "KeyRow":
        row = await revoke_key(conn, user_id=user.id, prefix=prefix)
        if row is None:
            raise Refused(
                f"{name!r} has no key with prefix {prefix!r}; see `tradegraph users keys list {name}`"
            )
        return row

    row = _run(name, revoked)
    typer.echo(
        f"revoked key {row['prefix']} ({row['label']!r}) of {name!r} at {_when(row['revoked_at'])} UTC"
    )


def webhook_secret(name: str) -> None:
    """Print the secret a user's webhooks are signed with (HMAC-SHA256 over the raw body)."""
    from tradegraph.accounts import webhook_secret as secret_of

    async def secret(conn: "AsyncConnection[Any]", user: "User") -> str:
        return await secret_of(conn, user_id=user.id)

    typer.echo(_run(name, secret))
