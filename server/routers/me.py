"""The caller's own account: who they are, and their API keys (issue, list, revoke).

A key is in an answer only once, when `POST /me/keys` issues it; listings show prefixes.
"""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import StringConstraints, field_validator

from server.deps import CurrentUser, PoolDep
from server.schemas import Body
from tradegraph.accounts import UserProfile, user_profile
from tradegraph.keys import KeyRow, add_key, checked_expiry, list_keys, revoke_key

router = APIRouter(prefix="/me", tags=["me"])

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class KeyCreate(Body):
    """POST /me/keys: a label to tell the key apart, and when it stops working (never by default)."""

    label: Label
    expires_at: datetime | None = None
    """ISO-8601; without an offset it is UTC. Must be in the future."""

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        return None if value is None else checked_expiry(value)


@router.get("")
async def me(user: CurrentUser, pool: PoolDep) -> UserProfile:
    """The caller: id, name, whether an admin, and since when."""
    async with pool.connection() as conn:
        return await user_profile(conn, user_id=user.id)


@router.get("/keys")
async def keys(user: CurrentUser, pool: PoolDep) -> list[KeyRow]:
    """The caller's keys, revoked and expired ones included, oldest first (prefixes, never keys)."""
    async with pool.connection() as conn:
        return await list_keys(conn, user_id=user.id)


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    """Issue a key for the caller; the answer is the only time the key itself is shown."""
    async with pool.connection() as conn:
        issued = await add_key(conn, user_id=user.id, label=body.label, expires_at=body.expires_at)
    return asdict(issued)


@router.delete("/keys/{prefix}", status_code=204)
async def revoke(prefix: str, user: CurrentUser, pool: PoolDep) -> None:
    """Revoke one of the caller's keys (the one making this request too): refused from the next request on."""
    async with pool.connection() as conn:
        revoked = await revoke_key(conn, user_id=user.id, prefix=prefix)
    if revoked is None:
        raise HTTPException(404, f"you have no key with prefix {prefix!r}")
