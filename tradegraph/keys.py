"""API keys: several labelled keys per user, stored as hashes, that may expire and are revoked by prefix.

A key is shown once when issued; afterwards it is known by its prefix, unique per user. Checking a
key refuses a revoked or expired one at once and records its last use at most once a minute.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from psycopg import AsyncConnection
from typing_extensions import TypedDict

KEY_PREFIX = "tg_"
SHOWN_PREFIX_LENGTH = 12
"""Characters of a key kept in clear (`tg_` and 9 random ones): how its owner tells keys apart."""
DEFAULT_LABEL = "default"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is rewritten only when older than this: a key in use costs one write a minute."""

_KEY_COLUMNS = "key_prefix AS prefix, label, created_at, expires_at, last_used_at, revoked_at"
INSERT_KEY = """
INSERT INTO api_keys (user_id, key_hash, key_prefix, label, expires_at) VALUES (%s, %s, %s, %s, %s)
RETURNING key_prefix AS prefix, label, created_at, expires_at
"""
SELECT_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = %s ORDER BY created_at, id"
REVOKE_KEY = f"""
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE user_id = %s AND key_prefix = %s RETURNING {_KEY_COLUMNS}
"""
AUTHENTICATE = """
WITH found AS (
    SELECT id, user_id, last_used_at FROM api_keys
    WHERE key_hash = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
), used AS (
    UPDATE api_keys SET last_used_at = now() FROM found
    WHERE api_keys.id = found.id AND (found.last_used_at IS NULL OR found.last_used_at < now() - %s)
)
SELECT u.id, u.name, u.is_admin FROM found JOIN users u ON u.id = found.user_id
"""


class KeyRow(TypedDict):
    """A key as its owner sees it: never the key nor its hash."""

    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    """Last request made with it, to the minute (None: never used)."""
    revoked_at: datetime | None


class KeyOwner(TypedDict):
    """The user a valid key belongs to."""

    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: the only time `key` is known in clear."""

    key: str
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key (shown to its owner once)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def checked_expiry(moment: datetime) -> datetime:
    """An expiry time in the future (a time without an offset is UTC); ValueError when it has passed."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise ValueError(f"expires_at {moment.isoformat()} is not in the future")
    return moment


async def add_key(
    conn: AsyncConnection[Any],
    *,
    user_id: int,
    label: str = DEFAULT_LABEL,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Issue another key for a user; only its hash and prefix are stored. ValueError for a past expiry."""
    if expires_at is not None:
        expires_at = checked_expiry(expires_at)
    key = new_key()
    cur = await conn.execute(
        INSERT_KEY, (user_id, hash_key(key), key[:SHOWN_PREFIX_LENGTH], label, expires_at)
    )
    row = await cur.fetchone()
    assert row is not None
    return IssuedKey(key=key, **row)


async def list_keys(conn: AsyncConnection[Any], *, user_id: int) -> list[KeyRow]:
    """The user's keys, revoked and expired ones included, oldest first."""
    return [cast(KeyRow, dict(r)) for r in await (await conn.execute(SELECT_KEYS, (user_id,))).fetchall()]


async def revoke_key(conn: AsyncConnection[Any], *, user_id: int, prefix: str) -> KeyRow | None:
    """Revoke the user's key with this prefix (again: no change); None when the user has no such key."""
    row = await (await conn.execute(REVOKE_KEY, (user_id, prefix))).fetchone()
    return cast(KeyRow, dict(row)) if row else None


async def authenticate(conn: AsyncConnection[Any], *, key: str) -> KeyOwner | None:
    """The owner of a key that is neither revoked nor expired (by the database's clock), or None.

    Records the key's use in the same statement when its `last_used_at` is older than a minute."""
    row = await (await conn.execute(AUTHENTICATE, (hash_key(key), LAST_USED_RESOLUTION))).fetchone()
    return cast(KeyOwner, dict(row)) if row else None
