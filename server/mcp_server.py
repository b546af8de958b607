"""`/mcp`: MCP over streamable HTTP (the official `mcp` SDK), authenticated with the API keys.

Every request needs a valid key (`x-api-key` or `Authorization: Bearer`), checked before any MCP
processing: 401 otherwise. The key's user goes in the request's ASGI scope, where each tool of
`server.mcp_tools` reads it. Mounted by `server.app`, whose lifespan runs the session manager.
"""

import inspect
import logging

from fastapi import FastAPI, HTTPException
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server.deps import current_user
from server.mcp_tools import CALLER, TOOLS, Caller
from server.services import RunServices

PATH = "/mcp"
INSTRUCTIONS = """\
tradegraph runs AI trading bots ("models") in backtest sessions over historical market data.
Every tool acts for the user of the API key this connection was opened with: you only ever see and
act on that user's bots, sessions and arenas. Money is a decimal string in dollars; dates are
YYYY-MM-DD (or "today"). Typical flow: list_bots -> start_session -> session_status every few
seconds -> if state is "paused", look at pending_approval and call approve_order or reject_order ->
when state is "done", bot_trades and bot_portfolio show the outcome."""


class RequireApiKey:
    """ASGI wrapper: 401 without a valid API key; otherwise the caller goes in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services: RunServices = scope["app"].state.services
        try:  # the same check, and the same 401 sentences, as every JSON route
            user = await current_user(Request(scope), services.pool)
        except HTTPException as exc:
            await JSONResponse({"detail": exc.detail}, status_code=exc.status_code)(scope, receive, send)
            return
        scope[CALLER] = Caller(user=user, services=services)
        await self.app(scope, receive, send)


def mount(app: FastAPI) -> StreamableHTTPSessionManager:
    """Serve the MCP tools at `/mcp` on `app`; returns the session manager the lifespan must run."""
    server = MCPServer("tradegraph", instructions=INSTRUCTIONS, version=app.version)
    for tool, annotations in TOOLS:
        server.add_tool(tool, description=inspect.getdoc(tool), annotations=annotations)
    # Stateless, JSON answers: no MCP session lives in a process, so any server process answers any
    # request. Host checks stay off: every request carries an API key, which a rebinding page lacks.
    mcp_app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    # Stateless requests each "terminate" their transport, which the SDK logs at INFO every time.
    logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)
    app.router.routes.append(Route(PATH, RequireApiKey(mcp_app), include_in_schema=False))
    return server.session_manager
