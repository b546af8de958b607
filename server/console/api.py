"""The console's client of the JSON API, called in-process with the caller's key.

The console renders what the public API returns: the same routes, ownership checks, validation
messages and JSON shapes that SDK clients get, with no second code path to keep in step.
"""

import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import Depends, HTTPException, Request

from server.deps import CurrentUser, api_key_of

BASE_URL = "http://console.local"


class _HideConsoleRequests(logging.Filter):
    """httpx logs every request at INFO; the console's in-process calls would double the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return BASE_URL not in record.getMessage()


logging.getLogger("httpx").addFilter(_HideConsoleRequests())


class ApiError(Exception):
    """A non-2xx answer of the API, with its status and `detail`."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []

    def names(self, field: str) -> bool:
        """Whether the error is about `field` (a structured location or a mention in the detail)."""
        if any(field in [str(part) for part in e.get("loc", ())] for e in self.errors):
            return True
        return re.search(rf"\b{re.escape(field)}\b", self.detail) is not None


class ConsoleApi:
    """GET/POST/PATCH/DELETE against this app's own routes; raises ApiError on failure."""

    def __init__(self, app: Any, api_key: str) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers={"x-api-key": api_key}
        )

    async def get(self, path: str, **params: Any) -> Any:
        return await self._call("GET", path, params=params)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", path, json=body)

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        return await self._call("PATCH", path, json=body)

    async def delete(self, path: str) -> None:
        await self._call("DELETE", path)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._client.request(method, path, **kwargs)
        if response.status_code == 401:
            raise HTTPException(401, "invalid API key")
        if response.is_error:
            raise api_error(response)
        return response.json() if response.content else None


def api_error(response: httpx.Response) -> ApiError:
    """The ApiError of a failed response (its `detail`, or the body when it has none)."""
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, response.text or response.reason_phrase)
    detail = body.get("detail") if isinstance(body, dict) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    return ApiError(response.status_code, str(detail or body), errors if isinstance(errors, list) else None)


async def console_api(request: Request, user: CurrentUser) -> AsyncIterator[ConsoleApi]:
    """The API as the authenticated caller (the key was checked by `CurrentUser`)."""
    key = api_key_of(request)
    assert key is not None
    api = ConsoleApi(request.app, key)
    try:
        yield api
    finally:
        await api.aclose()


ApiDep = Annotated[ConsoleApi, Depends(console_api)]
