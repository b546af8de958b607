"""API keys over HTTP (`/me`, `/me/keys`), the command line and the console, on a real server and database."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from tests.test_cli import run_cli
from tradegraph.keys import SHOWN_PREFIX_LENGTH, hash_key

KEY_FIELDS = {"prefix", "label", "created_at", "expires_at", "last_used_at", "revoked_at"}


def client(server: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=30)


async def status_with(server: Any, key: str, path: str = "/me") -> int:
    async with client(server, key) as http:
        return (await http.get(path)).status_code


async def issue(server: Any, key: str, **body: Any) -> dict[str, Any]:
    async with client(server, key) as http:
        response = await http.post("/me/keys", json={"label": "test", **body})
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def test_me_names_the_caller(server: Any, make_user: Any) -> None:
    user = await make_user()
    async with client(server, user["api_key"]) as http:
        me = (await http.get("/me")).json()
        anonymous = await http.get("/me", headers={"x-api-key": ""})
    assert set(me) == {"id", "name", "is_admin", "created_at"}
    assert (me["id"], me["name"], me["is_admin"]) == (user["id"], user["name"], False)
    assert anonymous.status_code == 401


async def test_a_new_key_is_shown_once_and_never_listed(server: Any, make_user: Any) -> None:
    user = await make_user()
    issued = await issue(server, user["api_key"], label="nightly cron")
    assert set(issued) == {"key", "prefix", "label", "created_at", "expires_at"}
    key = issued["key"]
    assert issued["prefix"] == key[:SHOWN_PREFIX_LENGTH] and issued["label"] == "nightly cron"
    assert issued["expires_at"] is None
    assert await status_with(server, key) == 200

    async with client(server, key) as http:
        listing = await http.get("/me/keys")
    assert listing.status_code == 200
    assert key not in listing.text and hash_key(key) not in listing.text
    assert user["api_key"] not in listing.text
    rows = listing.json()
    assert [set(r) for r in rows] == [KEY_FIELDS, KEY_FIELDS]
    assert [r["label"] for r in rows] == ["default", "nightly cron"]
    assert len({r["prefix"] for r in rows}) == 2


async def test_a_key_revoked_over_http_is_refused_on_its_next_request(server: Any, make_user: Any) -> None:
    user = await make_user()
    issued = await issue(server, user["api_key"])
    async with client(server, issued["key"]) as http:
        assert (await http.get("/me")).status_code == 200
        revoked = await http.delete(f"/me/keys/{issued['prefix']}")  # with the very key it revokes
        assert revoked.status_code == 204, revoked.text
        after = await http.get("/me")
        assert after.status_code == 401 and after.json()["detail"] == "invalid API key"
        assert (await http.post("/threads/search", json={})).status_code == 401
    assert await status_with(server, user["api_key"]) == 200, "the user's other key still works"
    async with client(server, user["api_key"]) as http:
        rows = {r["prefix"]: r for r in (await http.get("/me/keys")).json()}
        again = await http.delete(f"/me/keys/{issued['prefix']}")
    assert rows[issued["prefix"]]["revoked_at"] is not None
    assert again.status_code == 204, "revoking twice changes nothing"


async def test_an_expired_key_is_refused(server: Any, make_user: Any) -> None:
    user = await make_user()
    soon = datetime.now(UTC) + timedelta(seconds=2)
    issued = await issue(server, user["api_key"], expires_at=soon.isoformat())
    assert datetime.fromisoformat(issued["expires_at"]) == soon
    assert await status_with(server, issued["key"]) == 200
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.5)
    assert await status_with(server, issued["key"]) == 401
    async with client(server, user["api_key"]) as http:
        rows = {r["prefix"]: r for r in (await http.get("/me/keys")).json()}
    assert rows[issued["prefix"]]["revoked_at"] is None, "expired, not revoked"


async def test_bad_key_requests_are_422_naming_the_field(server: Any, make_user: Any) -> None:
    user = await make_user()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"label": "x", "expires_at": past}, "expires_at"),
        ({"label": "x", "expires_at": "next tuesday"}, "expires_at"),
        ({"label": ""}, "label"),
        ({"label": "x" * 101}, "label"),
        ({}, "label"),
    ]
    async with client(server, user["api_key"]) as http:
        for body, field in cases:
            response = await http.post("/me/keys", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"].startswith(f"{field}:"), response.text
        assert len((await http.get("/me/keys")).json()) == 1, "nothing was issued"


async def test_another_users_prefix_is_404_and_stays_valid(server: Any, make_user: Any) -> None:
    owner, stranger = await make_user(), await make_user()
    issued = await issue(server, owner["api_key"])
    async with client(server, stranger["api_key"]) as http:
        response = await http.delete(f"/me/keys/{issued['prefix']}")
        unknown = await http.delete("/me/keys/tg_nosuchkey")
    assert response.status_code == 404 and issued["prefix"] in response.json()["detail"]
    assert unknown.status_code == 404
    assert await status_with(server, issued["key"]) == 200


async def test_last_use_is_recorded_at_most_once_a_minute(
    server: Any, make_user: Any, pool: AsyncConnectionPool
) -> None:
    user = await make_user()
    issued = await issue(server, user["api_key"])

    async def last_used() -> Any:
        async with client(server, user["api_key"]) as http:
            rows = {r["prefix"]: r for r in (await http.get("/me/keys")).json()}
        return rows[issued["prefix"]]["last_used_at"]

    assert await last_used() is None
    assert await status_with(server, issued["key"]) == 200
    first = await last_used()
    assert first is not None
    assert datetime.now(UTC) - datetime.fromisoformat(first) < timedelta(minutes=1)
    assert await status_with(server, issued["key"]) == 200
    assert await last_used() == first, "a second use within the minute writes nothing"
    async with pool.connection() as conn:  # as if the last use were two minutes ago
        await conn.execute(
            "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE key_hash = %s",
            (hash_key(issued["key"]),),
        )
    assert await status_with(server, issued["key"]) == 200
    assert datetime.now(UTC) - datetime.fromisoformat(await last_used()) < timedelta(minutes=1)


def test_cli_keys_create_list_revoke_and_webhook_secret(database_url: str, server: Any) -> None:
    name = f"cli-keys-{uuid.uuid4().hex[:8]}"
    assert run_cli(database_url, "users", "create", name).returncode == 0
    created = run_cli(
        database_url, "users", "keys", "create", name, "--label", "feed", "--expires-at", "2099-01-31"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert re.fullmatch(r"tg_[A-Za-z0-9_-]{40,}", key), created.stdout
    assert httpx.get(f"{server.url}/me", headers={"x-api-key": key}).status_code == 200

    listed = run_cli(database_url, "users", "keys", "list", name)
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["prefix", "label", "created", "expires", "last", "used", "revoked"]
    line = next(ln for ln in lines if ln.startswith(key[:SHOWN_PREFIX_LENGTH]))
    assert "feed" in line and "2099-01-31 00:00" in line and key not in listed.stdout

    revoked = run_cli(database_url, "users", "keys", "revoke", name, key[:SHOWN_PREFIX_LENGTH])
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(f"{server.url}/me", headers={"x-api-key": key}).status_code == 401

    secret = run_cli(database_url, "users", "webhook-secret", name)
    assert secret.returncode == 0, secret.stderr
    assert re.fullmatch(r"[0-9a-f]{64}", secret.stdout.strip()), secret.stdout


def test_cli_key_errors_are_one_line_and_fail(database_url: str) -> None:
    name = f"cli-keys-{uuid.uuid4().hex[:8]}"
    assert run_cli(database_url, "users", "create", name).returncode == 0
    cases = [
        (("users", "keys", "list", "nobody-" + name), "no user named"),
        (("users", "webhook-secret", "nobody-" + name), "no user named"),
        (("users", "keys", "revoke", name, "tg_nosuchkey"), "has no key with prefix 'tg_nosuchkey'"),
        (("users", "keys", "create", name, "--expires-at", "soonish"), "bad --expires-at 'soonish'"),
        (("users", "keys", "create", name, "--expires-at", "2001-01-01"), "is not in the future"),
    ]
    for args, message in cases:
        result = run_cli(database_url, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


async def test_console_keys_page_issues_lists_and_revokes(server: Any, make_user: Any) -> None:
    user = await make_user()
    async with client(server, user["api_key"]) as http:
        page = await http.get("/console/keys", headers={"x-api-key": ""})
        assert page.status_code == 200 and 'data-src="/console/fragments/keys"' in page.text
        assert 'href="/console/keys"' in page.text

        bad = await http.post(
            "/console/fragments/keys", data={"label": "ci", "expires_at": "2001-01-01T00:00"}
        )
        assert bad.status_code == 422 and 'id="key-expires_at-error"' in bad.text

        made = await http.post(
            "/console/fragments/keys", data={"label": "ci", "expires_at": "2099-06-30T12:00"}
        )
        assert made.status_code == 201, made.text
        key = re.search(r'id="issued-key-value"[^>]*value="([^"]+)"', made.text)
        assert key is not None
        new_key = key.group(1)
        prefix = new_key[:SHOWN_PREFIX_LENGTH]
        assert f'data-key-prefix="{prefix}"' in made.text and "2099-06-30 12:00 UTC" in made.text
        assert await status_with(server, new_key) == 200

        panel = await http.get("/console/fragments/keys")
        assert new_key not in panel.text, "the key is shown only once"
        mine = user["api_key"][:SHOWN_PREFIX_LENGTH]
        assert re.search(
            rf"<code>{re.escape(mine)}</code> <span class=\"muted\">\(this browser\)", panel.text
        )
        assert f"/console/fragments/keys/{prefix}/revoke" in panel.text

        revoked = await http.post(f"/console/fragments/keys/{prefix}/revoke")
        assert revoked.status_code == 200, revoked.text
        assert f"Revoked key {prefix}." in revoked.text
        assert f"/console/fragments/keys/{prefix}/revoke" not in revoked.text
        assert await status_with(server, new_key) == 401
