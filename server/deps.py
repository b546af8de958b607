"""Request dependencies as `Annotated` aliases: the pool, the run services, the authenticated user."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from server.services import RunServices
from tradegraph.accounts import User, user_for_key
from tradegraph.database import Pool


async def get_pool(request: Request) -> Pool:
    """The app's connection pool (opened in the lifespan)."""
    pool: Pool = request.app.state.pool
    return pool


PoolDep = Annotated[Pool, Depends(get_pool)]


def api_key_of(request: Request) -> str | None:
    """The key from `x-api-key` (what langgraph-sdk sends) or `Authorization: Bearer`."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def current_user(request: Request, pool: PoolDep) -> User:
    """The caller, or 401 naming what is missing or wrong."""
    key = api_key_of(request)
    if key is None:
        raise HTTPException(
            401, "missing API key: send it in the x-api-key header or as Authorization: Bearer"
        )
    async with pool.connection() as conn:
        user = await user_for_key(conn, key=key)
    if user is None:
        raise HTTPException(401, "invalid API key")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    """The caller when an admin, else 403 naming the role."""
    if not user.is_admin:
        raise HTTPException(403, f"user {user.name!r} is not an admin: only admins may do this")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


async def get_services(request: Request) -> RunServices:
    """The run services (graph, lifecycle, notifier, worker) started in the lifespan."""
    services: RunServices = request.app.state.services
    return services


ServicesDep = Annotated[RunServices, Depends(get_services)]
