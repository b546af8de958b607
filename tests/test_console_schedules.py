"""The console's Schedules page of a bot, over HTTP against the real server and database: add a daily
schedule from the form, see it with its next run, pause, resume and delete it through the cron API."""

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from tests.test_console_orders import console

NEW_YORK, BERLIN = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
FORM = [
    ("time", "09:45"),
    ("days", "1"),
    ("days", "3"),
    ("days", "5"),
    ("timezone", "Europe/Berlin"),
    ("symbols", "aapl, MSFT"),
    ("mode", "daily"),
    ("decider", "rule"),
    ("start", "today"),
    ("end", "today"),
    ("webhook", "https://hooks.example.com/tradegraph"),
]


def panel_of(model_id: int) -> str:
    return f"/console/fragments/models/{model_id}/schedules"


async def crons_of(client: httpx.AsyncClient, model_id: int) -> list[dict[str, Any]]:
    response = await client.post(
        "/runs/crons/search", json={"metadata": {"model_id": model_id}, "limit": 100}
    )
    assert response.status_code == 200, response.text
    crons: list[dict[str, Any]] = response.json()
    return crons


async def post_form(client: httpx.AsyncClient, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    """Post a form as htmx does (urlencoded, a checkbox group as repeated keys)."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return await client.post(path, content=urlencode(pairs), headers=headers)


def row_of(html: str, cron_id: str) -> str:
    """The table row of one schedule."""
    match = re.search(rf'<tr data-cron-id="{cron_id}">.*?</tr>', html, re.S)
    assert match, f"no row for cron {cron_id}"
    return match.group(0)


async def test_add_a_daily_schedule_see_its_next_run_pause_resume_and_delete(
    server: Any, make_model: Any
) -> None:
    model = await make_model()
    async with console(server.url, model["api_key"]) as client:
        shell = await client.get(f"/console/models/{model['id']}/schedules")
        assert shell.status_code == 200 and f'data-src="{panel_of(model["id"])}"' in shell.text
        model_page = await client.get(f"/console/fragments/models/{model['id']}")
        assert f'href="/console/models/{model["id"]}/schedules"' in model_page.text

        empty = await client.get(panel_of(model["id"]))
        assert empty.status_code == 200, empty.text
        assert "No schedules yet" in empty.text
        assert 'value="16:30"' in empty.text and 'value="America/New_York"' in empty.text
        checked = re.findall(r'name="days" value="(\d)" checked', empty.text)
        assert checked == ["1", "2", "3", "4", "5"]  # Mon-Fri by default
        assert 'data-symbol="AAPL"' in empty.text  # the market's symbols, as in the session form

        added = await post_form(client, panel_of(model["id"]), FORM)
        assert added.status_code == 201, added.text
        [cron] = await crons_of(client, model["id"])
        assert cron["schedule"] == "45 9 * * 1,3,5" and cron["timezone"] == "Europe/Berlin"
        assert cron["enabled"] is True and cron["metadata"]["model_id"] == model["id"]
        assert cron["payload"]["input"] == {
            "mode": "daily",
            "start": "today",
            "end": "today",
            "symbols": ["AAPL", "MSFT"],
            "decider": "rule",
        }
        assert cron["payload"]["webhook"] == "https://hooks.example.com/tradegraph"
        due = datetime.fromisoformat(cron["next_run_date"])
        in_berlin, in_new_york = due.astimezone(BERLIN), due.astimezone(NEW_YORK)
        assert in_berlin.strftime("%H:%M") == "09:45" and in_berlin.weekday() in (0, 2, 4)
        ny_text, berlin_text = in_new_york.strftime("%Y-%m-%d %H:%M"), in_berlin.strftime("%Y-%m-%d %H:%M")
        assert f"Added schedule 09:45 Mon, Wed, Fri (Europe/Berlin): next run {ny_text} New York time." in (
            added.text
        )
        row = row_of(added.text, cron["cron_id"])
        for shown in (
            "09:45 Mon, Wed, Fri",
            "45 9 * * 1,3,5",
            "active",
            f"{ny_text} New York",
            f"{berlin_text} Europe/Berlin",
            "never",  # no end time
            "AAPL, MSFT · rule · daily",
            "https://hooks.example.com/tradegraph",
            "none yet",
        ):
            assert shown in row, shown

        # a run the schedule started: a new thread with metadata.cron_id, linked to its session page
        thread = await client.post(
            "/threads", json={"metadata": {"model_id": model["id"], "cron_id": cron["cron_id"]}}
        )
        thread_id = thread.json()["thread_id"]
        listed = await client.get(panel_of(model["id"]))
        assert f'href="/console/sessions/{thread_id}"' in row_of(listed.text, cron["cron_id"])

        paused = await client.post(f"{panel_of(model['id'])}/{cron['cron_id']}/pause")
        assert paused.status_code == 200, paused.text
        assert (await crons_of(client, model["id"]))[0]["enabled"] is False
        row = row_of(paused.text, cron["cron_id"])
        assert "paused" in row and "none while paused" in row and ">Resume</button>" in row
        assert f"Paused schedule {cron['cron_id'][:8]}." in paused.text

        resumed = await client.post(f"{panel_of(model['id'])}/{cron['cron_id']}/resume")
        assert resumed.status_code == 200, resumed.text
        [again] = await crons_of(client, model["id"])
        assert again["enabled"] is True and again["next_run_date"]
        assert ">Pause</button>" in row_of(resumed.text, cron["cron_id"])

        deleted = await client.post(f"{panel_of(model['id'])}/{cron['cron_id']}/delete")
        assert deleted.status_code == 200, deleted.text
        assert await crons_of(client, model["id"]) == []
        assert "No schedules yet" in deleted.text and "the sessions it started stay" in deleted.text
        assert (await client.get(f"/threads/{thread_id}")).status_code == 200


async def test_the_form_shows_what_the_api_refuses_and_creates_nothing(server: Any, make_model: Any) -> None:
    model = await make_model()
    cases: list[tuple[dict[str, str | None], str, str]] = [
        ({"webhook": "http://127.0.0.1:9/hook"}, "schedule-webhook-error", "private or loopback address"),
        ({"timezone": "Mars/Olympus"}, "schedule-timezone-error", "timezone must be an IANA time zone"),
        ({"symbols": "ZZZZ"}, "schedule-symbols-error", "unknown symbols ZZZZ"),
        ({"time": "25:00"}, "schedule-time-error", "time of day must be HH:MM"),
        ({"days": None}, "schedule-days-error", "pick at least one weekday"),
    ]
    async with console(server.url, model["api_key"]) as client:
        for change, field_error, message in cases:
            form = [(k, str(change.get(k, v))) for k, v in FORM if change.get(k, v) is not None]
            response = await post_form(client, panel_of(model["id"]), form)
            assert response.status_code == 422, response.text
            assert f'id="{field_error}"' in response.text and message in response.text, message
            assert 'id="add-schedule-error"' in response.text
            for typed in change.values():
                assert typed is None or f'value="{typed}"' in response.text  # what was typed stays
        assert await crons_of(client, model["id"]) == []


async def test_another_user_cannot_see_or_change_a_schedule(server: Any, make_model: Any) -> None:
    owner, stranger = await make_model(), await make_model()
    async with console(server.url, owner["api_key"]) as client:
        added = await post_form(client, panel_of(owner["id"]), FORM)
        assert added.status_code == 201, added.text
        [cron] = await crons_of(client, owner["id"])
    async with console(server.url, stranger["api_key"]) as client:
        assert (await client.get(panel_of(owner["id"]))).status_code == 404
        assert (await post_form(client, panel_of(owner["id"]), FORM)).status_code == 404
        own = await client.get(panel_of(stranger["id"]))
        assert own.status_code == 200 and cron["cron_id"] not in own.text
        for model_id in (owner["id"], stranger["id"]):
            for action in ("pause", "resume", "delete"):
                response = await client.post(f"{panel_of(model_id)}/{cron['cron_id']}/{action}")
                assert response.status_code == 404, (model_id, action, response.text)
        assert await crons_of(client, owner["id"]) == []
    async with console(server.url, owner["api_key"]) as client:
        [still] = await crons_of(client, owner["id"])
        assert still["enabled"] is True
