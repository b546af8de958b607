"""The console's daily-schedule form as a `POST /runs/crons` body, and daily schedules put in words.

The form asks for a time of day and weekdays, not a cron expression: `16:30` on Mon-Fri is the
schedule `30 16 * * 1-5`, in the form's time zone.
"""

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from server.console.forms import run_input
from server.console.render import MARKET_TZ

WEEKDAYS = (("1", "Mon"), ("2", "Tue"), ("3", "Wed"), ("4", "Thu"), ("5", "Fri"), ("6", "Sat"), ("0", "Sun"))
"""Cron's weekday numbers (0 is Sunday) in the order a week is read."""
MON_TO_FRI = {1, 2, 3, 4, 5}
TODAY = "today"
TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
SCHEDULE_FIELDS = ("timezone", "webhook", "symbols", "decider", "mode", "start", "end")
"""Form fields an API error may name (`schedule` errors go to the form, as it is built here)."""
SCHEDULE_DEFAULTS = {
    "time": "16:30",
    "days": "1,2,3,4,5",
    "timezone": MARKET_TZ.key,
    "symbols": "AAPL, MSFT, IBM",
    "mode": "daily",
    "decider": "rule",
    "start": TODAY,
    "end": TODAY,
    "webhook": "",
}
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "UTC",
)
"""Suggested time zones; any IANA name is accepted."""


async def read_schedule_form(request: Request) -> dict[str, str]:
    """The form's fields as stripped strings; the checked weekdays joined by commas in `days`."""
    pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    values = {key: value.strip() for key, value in pairs if key != "days"}
    values["days"] = ",".join(value for key, value in pairs if key == "days")
    return values


def weekday_field(days: set[int]) -> str:
    """The weekday field of a cron expression: `*`, `1-5` or a list such as `1,3,5`."""
    if days == set(range(7)):
        return "*"
    if days == MON_TO_FRI:
        return "1-5"
    return ",".join(str(day) for day in sorted(days))


def cron_body(values: dict[str, str], model_id: int) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The POST /runs/crons body of the form, or the messages of the fields it cannot use."""
    errors: dict[str, str] = {}
    time = TIME_OF_DAY.fullmatch(values.get("time", ""))
    if time is None:
        errors["time"] = "time of day must be HH:MM (24-hour), e.g. 16:30"
    numbers = {number for number, _ in WEEKDAYS}
    days = {int(day) for day in values.get("days", "").split(",") if day in numbers}
    if not days:
        errors["days"] = "pick at least one weekday"
    if time is None or not days:
        return None, errors
    dated = {**values, "start": values.get("start") or TODAY, "end": values.get("end") or TODAY}
    body: dict[str, Any] = {
        "assistant_id": "trading_session",
        "schedule": f"{int(time[2])} {int(time[1])} * * {weekday_field(days)}",
        "timezone": values.get("timezone") or MARKET_TZ.key,
        "input": run_input(dated),
        "metadata": {"model_id": model_id},
    }
    if values.get("webhook"):
        body["webhook"] = values["webhook"]
    return body, {}


def described(schedule: str) -> str | None:
    """A daily schedule in words (`16:30 Mon-Fri`), or None for any other cron expression."""
    parts = schedule.split()
    if len(parts) != 5 or parts[2:4] != ["*", "*"] or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    days = _weekdays(parts[4])
    if days is None:
        return None
    return f"{int(parts[1]):02d}:{int(parts[0]):02d} {days}"


def _weekdays(field: str) -> str | None:
    if field == "*":
        return "every day"
    days: set[int] = set()
    for item in field.split(","):
        low, _, high = item.partition("-")
        if not low.isdigit() or not (high == "" or high.isdigit()):
            return None
        days.update(day % 7 for day in range(int(low), int(high or low) + 1))  # 7 is Sunday too
    if days == set(range(7)):
        return "every day"
    if days == MON_TO_FRI:
        return "Mon-Fri"
    return ", ".join(name for number, name in WEEKDAYS if int(number) in days)
