"""A model's buy-and-hold chained across its sessions, checked by hand; evenly sampled sparklines."""

from datetime import datetime
from decimal import Decimal

from tradegraph.reports import SessionMark, chain_benchmark, sample_evenly


def mark(thread: str, day: int, equity: str, benchmark: str, start: str) -> SessionMark:
    return {
        "thread_id": thread,
        "bar_time": datetime(2012, 1, day, 16),
        "equity": Decimal(equity),
        "benchmark": Decimal(benchmark),
        "start_equity": Decimal(start),
        "mode": "daily",
    }


def test_buy_and_hold_is_chained_across_sessions() -> None:
    marks = [
        # Session a starts at 100,000; its buy-and-hold is worth 110,000 at its end: +10%.
        mark("a", 3, "100000", "105000", "100000"),
        mark("a", 4, "101000", "110000", "100000"),
        # Session b starts from the model's equity, 50,000: its buy-and-hold goes -20% then +4%.
        mark("b", 5, "50000", "40000", "50000"),
        mark("b", 6, "52000", "52000", "50000"),
    ]
    curve = chain_benchmark(marks, Decimal("200000"))
    # By hand, on the model's initial cash of 200,000:
    #   a: 200,000 x 1.05 = 210,000; 200,000 x 1.10 = 220,000
    #   b: carried 1.10, then x 0.80 = 176,000; x 1.04 = 228,800
    assert [p["benchmark"] for p in curve] == [
        Decimal("210000.0000"),
        Decimal("220000.0000"),
        Decimal("176000.0000"),
        Decimal("228800.0000"),
    ]
    assert [p["equity"] for p in curve] == [m["equity"] for m in marks], "equity is the ledger's, unchanged"
    assert [p["thread_id"] for p in curve] == ["a", "a", "b", "b"]


def test_chained_benchmark_rounds_half_even_to_four_places() -> None:
    # 3 x (1 / 3 of the start) -> 100 / 3 = 33.33333... -> 33.3333 (ledger precision)
    curve = chain_benchmark([mark("a", 3, "1", "1", "3")], Decimal("100"))
    assert curve[0]["benchmark"] == Decimal("33.3333")


def test_a_session_without_a_start_equity_counts_as_flat() -> None:
    no_start: SessionMark = {**mark("a", 3, "1", "5", "1"), "start_equity": None}
    assert chain_benchmark([no_start], Decimal("100"))[0]["benchmark"] == Decimal("100.0000")


def test_sample_evenly_keeps_the_first_and_last() -> None:
    assert sample_evenly([1, 2, 3], 5) == [1, 2, 3]
    assert sample_evenly(list(range(11)), 3) == [0, 5, 10]
    assert sample_evenly(list(range(10)), 4) == [0, 3, 6, 9]
