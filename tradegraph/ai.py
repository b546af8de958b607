"""Which AI a bot uses: operator-named endpoints (configuration) and a bot's choice among them (data).

An endpoint is where an OpenAI-compatible server is and the key to it; the operator names them in
`TRADEGRAPH_LLM_ENDPOINTS`, and `openai` comes from `OPENAI_API_KEY` / `OPENAI_BASE_URL` when set.
Keys live only in the process's settings: never in the database, an API response, graph state, a
log or a stream event. A bot's `AIChoice` (endpoint name, model name, temperature, instructions) is
stored on the bot and copied into a session's state when the session starts, so a resume, a retry or
a fork uses the AI the session started with.
"""

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from typing_extensions import TypedDict

from tradegraph.settings import get_settings

OPENAI = "openai"
"""The endpoint made from OPENAI_API_KEY / OPENAI_BASE_URL."""


class AIChoice(TypedDict):
    """A bot's AI, as stored on the bot and copied into its sessions' state (no key in it)."""

    endpoint: str
    model: str
    temperature: float
    instructions: str


class Endpoint(BaseModel):
    """One named OpenAI-compatible server: its URL and key (the key never leaves this process)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    """None means api.openai.com."""
    api_key: SecretStr
    timeout_s: float = Field(default_factory=lambda: get_settings().llm_timeout_s, gt=0)


class AIChoiceInput(BaseModel):
    """`llm` in POST and PATCH /models, and in `tradegraph models create`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=200)
    temperature: float = Field(default=0.0, ge=0, le=2)
    instructions: str = Field(default="", max_length=4000)
    """Added to the system prompt of this bot's decisions."""


class UnknownEndpoint(LookupError):
    """The endpoint is not configured; the message lists the configured names."""


def endpoints() -> dict[str, Endpoint]:
    """The configured endpoints by name (raises ValueError naming a malformed one)."""
    settings = get_settings()
    named: dict[str, Endpoint] = {}
    if settings.openai_api_key:
        named[OPENAI] = Endpoint(
            base_url=settings.openai_base_url, api_key=SecretStr(settings.openai_api_key)
        )
    for name, raw in settings.llm_endpoints.items():
        try:
            named[name] = Endpoint.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"TRADEGRAPH_LLM_ENDPOINTS[{name!r}] is not an endpoint: {exc}") from exc
    return named


def endpoint(name: str) -> Endpoint:
    """One configured endpoint, or UnknownEndpoint listing the configured names."""
    named = endpoints()
    if name not in named:
        known = ", ".join(sorted(named)) or "none (set TRADEGRAPH_LLM_ENDPOINTS or OPENAI_API_KEY)"
        raise UnknownEndpoint(f"unknown LLM endpoint {name!r}; configured: {known}")
    return named[name]


def checked_choice(raw: AIChoiceInput) -> AIChoice:
    """A bot's AI choice whose endpoint is configured (UnknownEndpoint otherwise)."""
    endpoint(raw.endpoint)
    return {
        "endpoint": raw.endpoint,
        "model": raw.model,
        "temperature": raw.temperature,
        "instructions": raw.instructions,
    }


def default_choice() -> AIChoice:
    """What a bot without a choice of its own uses: the `openai` endpoint and TRADEGRAPH_LLM_MODEL."""
    return {"endpoint": OPENAI, "model": get_settings().llm_model, "temperature": 0.0, "instructions": ""}
