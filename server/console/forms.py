"""The console's two forms: creating a model and starting a session, as API request bodies."""

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from server.console.api import ApiError
from tradegraph.limits import LIMIT_FIELDS, RiskLimits

MODEL_FIELDS = ("name", "signature", "initial_cash", *LIMIT_FIELDS)
LIMIT_DEFAULTS = {name: RiskLimits.model_fields[name].default for name in LIMIT_FIELDS}
SESSION_DEFAULTS = {
    "mode": "daily",
    "start": "2012-01-03",
    "end": "2012-03-30",
    "symbols": "AAPL, MSFT, IBM",
    "decider": "rule",
}


@dataclass
class FormState:
    """What the user typed, and the messages to show: one for the form, one per named field."""

    values: dict[str, str]
    message: str = ""
    field_errors: dict[str, str] = field(default_factory=dict)

    def fail(self, error: ApiError, fields: tuple[str, ...]) -> "FormState":
        """Attach an API error to the form and to each field it names."""
        self.message = error.detail
        for name in fields:
            if error.names(name):
                self.field_errors[name] = error.detail
        return self


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded body as a dict of stripped strings (what htmx sends for a form)."""
    body = (await request.body()).decode()
    return {key: value.strip() for key, value in parse_qsl(body, keep_blank_values=True)}


def model_body(values: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The POST /models body, or the required fields left blank."""
    missing = {
        name: f"{name.replace('_', ' ')} is required"
        for name in ("name", "signature", "initial_cash")
        if not values.get(name)
    }
    if missing:
        return None, missing
    limits: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        raw = values.get(name, "")
        if raw:
            limits[name] = int(raw) if name == "max_trades_per_day" and raw.isdigit() else raw
    body = {"name": values["name"], "signature": values["signature"], "initial_cash": values["initial_cash"]}
    return {**body, "limits": limits}, {}


def run_input(values: dict[str, str]) -> dict[str, Any]:
    """The run input of the start-session form (symbols split on commas or spaces)."""
    return {
        "mode": values.get("mode") or "daily",
        "start": values.get("start", ""),
        "end": values.get("end", ""),
        "symbols": [s.upper() for s in re.split(r"[\s,]+", values.get("symbols", "")) if s],
        "decider": values.get("decider") or "rule",
    }
