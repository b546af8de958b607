"""Start-up rules: production refuses unsafe set-ups; development gets a local user with a fresh key."""

import logging
import sys

from psycopg.errors import UniqueViolation

from tradegraph.accounts import count_users, create_user
from tradegraph.database import Pool, uses_embedded
from tradegraph.keys import hash_key
from tradegraph.settings import Settings

log = logging.getLogger(__name__)

KNOWN_DEVELOPMENT_KEYS = ("dev", "development", "test", "testing", "changeme", "secret", "password", "local")
COUNT_KEYS_WITH_HASHES = "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND key_hash = ANY(%s)"


class UnsafeStartup(RuntimeError):
    """Production would start in a state that is unsafe; the message says how to fix it."""


def refuse_unsafe_database(settings: Settings) -> None:
    """Production never starts an embedded database (checked before one would be started)."""
    if settings.env == "production" and uses_embedded():
        raise UnsafeStartup("production needs DATABASE_URL; refusing to use the embedded database")


async def check_startup(pool: Pool, settings: Settings) -> None:
    """Refuse unsafe production start-ups; create the local user on a fresh development database."""
    async with pool.connection() as conn:
        users = await count_users(conn)
        if settings.env == "production":
            if users == 0:
                raise UnsafeStartup("production has no users; create one with `tradegraph users create NAME`")
            weak = [hash_key(k) for k in KNOWN_DEVELOPMENT_KEYS]
            row = await (await conn.execute(COUNT_KEYS_WITH_HASHES, (weak,))).fetchone()
            if row and row["n"]:
                raise UnsafeStartup(
                    "an API key is a known development key; revoke it before serving production"
                )
            return
        if users == 0:
            try:
                user, key = await create_user(conn, name="local")
            except UniqueViolation:  # another process, starting at the same moment, created it
                log.info("development user 'local' was created by another process starting up")
                return
            message = (
                f"created development user {user.name!r}; its API key (shown only now) is:\n{key}\n"
                "use it as x-api-key, or sign in to the console with it"
            )
            print(message, file=sys.stderr, flush=True)
            log.info("created development user %r", user.name)
