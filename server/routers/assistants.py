"""Assistants: the one built-in assistant of the `trading_session` graph (read-only)."""

from typing import Any

from fastapi import APIRouter

from graph import GRAPH_ID
from server.assistant import assistant_json, resolve_assistant
from server.deps import CurrentUser, ServicesDep
from server.schemas import AssistantSearch

router = APIRouter(prefix="/assistants", tags=["assistants"])


def _contains(outer: dict[str, Any], inner: dict[str, Any]) -> bool:
    return all(outer.get(k) == v for k, v in inner.items())


@router.post("/search")
async def search_assistants(body: AssistantSearch, user: CurrentUser) -> list[dict[str, Any]]:
    """Assistants matching the filters (there is one)."""
    item = assistant_json()
    matches = (
        _contains(item["metadata"], body.metadata)
        and body.graph_id in (None, GRAPH_ID)
        and (body.name is None or body.name.lower() in GRAPH_ID)
    )
    return [item][body.offset : body.offset + body.limit] if matches else []


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, user: CurrentUser) -> dict[str, Any]:
    """The assistant (its id or the graph name `trading_session`)."""
    resolve_assistant(assistant_id)
    return assistant_json()


@router.get("/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, services: ServicesDep, user: CurrentUser, xray: bool | int = False
) -> dict[str, Any]:
    """The drawable graph: nodes and edges, as LangGraph Studio expects."""
    resolve_assistant(assistant_id)
    drawn: dict[str, Any] = (await services.graph.aget_graph(xray=xray)).to_json()
    for node in drawn["nodes"]:
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    return drawn


@router.get("/{assistant_id}/schemas")
async def get_assistant_schemas(
    assistant_id: str, services: ServicesDep, user: CurrentUser
) -> dict[str, Any]:
    """Input, output, state and context JSON schemas of the graph."""
    resolve_assistant(assistant_id)
    graph = services.graph
    return {
        "graph_id": GRAPH_ID,
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_output_jsonschema(),
        "config_schema": {},
        "context_schema": None,
    }


@router.get("/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(assistant_id: str, user: CurrentUser) -> dict[str, Any]:
    """The graph has no subgraphs."""
    resolve_assistant(assistant_id)
    return {}
