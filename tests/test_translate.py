"""LangGraph v2 stream parts into the protocol's SSE events, mode by mode."""

from langchain_core.messages import AIMessageChunk
from langgraph.types import Interrupt

from server.runs.translate import graph_modes, to_events


def test_graph_modes_rename_messages_tuple_and_drop_duplicates() -> None:
    assert graph_modes(["values", "messages-tuple", "custom", "values"]) == ["custom", "messages", "values"]
    assert graph_modes(["messages", "messages-tuple"]) == ["messages"]


def test_values_carry_pending_interrupts() -> None:
    part = {"type": "values", "data": {"bar_index": 3}, "interrupts": ()}
    assert list(to_events(part, ["values"])) == [("values", {"bar_index": 3})]
    paused = Interrupt(value={"kind": "order_approval"}, id="i1")
    part = {"type": "values", "data": {"bar_index": 3}, "interrupts": (paused,)}
    assert list(to_events(part, ["values"])) == [("values", {"bar_index": 3, "__interrupt__": [paused]})]
    assert list(to_events(part, ["updates"])) == [], "not requested: nothing"


def test_messages_as_tuples_or_as_partial_messages() -> None:
    chunk = AIMessageChunk("buy", id="c1")
    part = {"type": "messages", "data": (chunk, {"langgraph_node": "decide"})}
    assert list(to_events(part, ["messages-tuple"])) == [("messages", [chunk, {"langgraph_node": "decide"}])]
    assert list(to_events(part, ["messages"])) == [("messages/partial", [chunk])]
    assert list(to_events(part, ["values"])) == []


def test_other_modes_pass_through_only_when_requested() -> None:
    part = {"type": "custom", "data": {"type": "equity", "equity": "100000.0000"}}
    assert list(to_events(part, ["custom", "values"])) == [
        ("custom", {"type": "equity", "equity": "100000.0000"})
    ]
    assert list(to_events(part, ["values"])) == []
    update = {"type": "updates", "data": {"risk_check": {"verdicts": []}}}
    assert list(to_events(update, ["updates"])) == [("updates", {"risk_check": {"verdicts": []}})]
