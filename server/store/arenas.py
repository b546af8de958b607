"""Arenas: a user's bots on one market, one session each; the entries and their live status."""

from datetime import datetime
from typing import Any, cast
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from typing_extensions import TypedDict

INSERT_ARENA = "INSERT INTO arenas (arena_id, user_id, input) VALUES (%s, %s, %s) RETURNING *"
INSERT_ENTRY = "INSERT INTO arena_entries (arena_id, model_id, thread_id, run_id) VALUES (%s, %s, %s, %s)"
SELECT_ARENA = "SELECT * FROM arenas WHERE arena_id = %s AND user_id = %s"
SELECT_ARENAS = "SELECT * FROM arenas WHERE user_id = %s ORDER BY created_at DESC LIMIT %s OFFSET %s"
SELECT_ENTRIES = """
SELECT e.model_id, e.thread_id, e.run_id, m.signature, m.llm,
       r.status AS run_status, t.status AS thread_status,
       (r.kwargs ->> 'bars_total')::int AS bars_total,
       (SELECT count(*) FROM equity_points p WHERE p.thread_id = e.thread_id::text)::int AS bars_done
FROM arena_entries e
JOIN models m ON m.id = e.model_id
LEFT JOIN runs r ON r.run_id = e.run_id
LEFT JOIN threads t ON t.thread_id = e.thread_id
WHERE e.arena_id = %s
ORDER BY e.model_id
"""


class ArenaRow(TypedDict):
    arena_id: UUID
    user_id: int
    input: dict[str, Any]
    created_at: datetime


class EntryRow(TypedDict):
    """One bot of an arena with its session's run and thread status and progress."""

    model_id: int
    thread_id: UUID
    run_id: UUID
    signature: str
    llm: dict[str, Any] | None
    run_status: str | None
    thread_status: str | None
    bars_total: int | None
    bars_done: int


async def insert_arena(
    conn: AsyncConnection[Any], *, arena_id: UUID, user_id: int, input: dict[str, Any]
) -> ArenaRow:
    row = await (await conn.execute(INSERT_ARENA, (arena_id, user_id, Jsonb(input)))).fetchone()
    assert row is not None, "INSERT ... RETURNING always returns the row"
    return cast(ArenaRow, dict(row))


async def add_entry(
    conn: AsyncConnection[Any], *, arena_id: UUID, model_id: int, thread_id: UUID, run_id: UUID
) -> None:
    await conn.execute(INSERT_ENTRY, (arena_id, model_id, thread_id, run_id))


async def get_arena(conn: AsyncConnection[Any], *, arena_id: UUID, user_id: int) -> ArenaRow | None:
    row = await (await conn.execute(SELECT_ARENA, (arena_id, user_id))).fetchone()
    return cast(ArenaRow, dict(row)) if row else None


async def list_arenas(conn: AsyncConnection[Any], *, user_id: int, limit: int, offset: int) -> list[ArenaRow]:
    rows = await (await conn.execute(SELECT_ARENAS, (user_id, limit, offset))).fetchall()
    return [cast(ArenaRow, dict(r)) for r in rows]


async def entries(conn: AsyncConnection[Any], *, arena_id: UUID) -> list[EntryRow]:
    return [
        cast(EntryRow, dict(r)) for r in await (await conn.execute(SELECT_ENTRIES, (arena_id,))).fetchall()
    ]
