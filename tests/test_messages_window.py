"""The LLM message window of a bar: merged like add_messages, capped, never opening on a lone tool result."""

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from graph.state import MAX_MESSAGES, bounded_messages


def human(i: int) -> HumanMessage:
    return HumanMessage(f"m{i}", id=f"m{i}")


def test_under_the_cap_messages_are_appended() -> None:
    merged = bounded_messages([human(0)], [human(1), human(2)])
    assert [m.id for m in merged] == ["m0", "m1", "m2"]


def test_a_message_with_a_known_id_replaces_the_old_one() -> None:
    merged = bounded_messages([human(0), human(1)], [HumanMessage("new text", id="m1")])
    assert [(m.id, m.content) for m in merged] == [("m0", "m0"), ("m1", "new text")]


def test_over_the_cap_the_bar_prompt_and_the_newest_messages_are_kept() -> None:
    left: list[AnyMessage] = [human(i) for i in range(MAX_MESSAGES)]
    merged = bounded_messages(left, [human(MAX_MESSAGES), human(MAX_MESSAGES + 1)])
    # 42 messages in: the first (the bar prompt), then the newest 39.
    assert len(merged) == MAX_MESSAGES
    assert [m.id for m in merged] == ["m0", *[f"m{i}" for i in range(3, MAX_MESSAGES + 2)]]


def test_the_kept_tail_never_starts_on_a_tool_result_without_its_call() -> None:
    call = AIMessage(
        "", id="call", tool_calls=[{"name": "get_price", "args": {"symbol": "AAPL"}, "id": "t1"}]
    )
    result = ToolMessage("price", tool_call_id="t1", id="result")
    newer = [human(i) for i in range(100, 138)]  # 38 newer messages
    # 42 in all: the newest 39 would open on `result`, whose call falls outside the window.
    merged = bounded_messages([human(0), human(1), call], [result, *newer])
    assert [m.id for m in merged] == ["m0", *[m.id for m in newer]]
    assert all(m.type != "tool" for m in merged)
