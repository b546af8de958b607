"""The per-key moving window behind the rate limits (server/ratelimit.py), on a clock the test sets."""

from limits import parse_many

from server.ratelimit import SWEEP_EVERY, MovingWindow


def window(text: str) -> MovingWindow:
    [item] = parse_many(text)
    return MovingWindow(item)


def test_a_key_gets_its_amount_in_any_window_and_waits_for_the_oldest_to_leave() -> None:
    limit = window("3/second")
    for now in (10.0, 10.2, 10.4):
        assert limit.wait_s("k", now) == 0.0
        limit.hit("k", now)
    assert limit.wait_s("k", 10.5) == 0.5, "the request at 10.0 leaves the window at 11.0"
    assert limit.wait_s("other", 10.5) == 0.0, "other keys are not affected"
    assert limit.wait_s("k", 11.0) == 0.0
    limit.hit("k", 11.0)
    assert abs(limit.wait_s("k", 11.1) - 0.1) < 1e-9, "now the request at 10.2 is the oldest"


def test_idle_keys_are_forgotten_and_busy_ones_kept() -> None:
    limit = window("2/minute")
    limit.hit("idle", 0.0)
    limit.hit("busy", 0.0)
    for i in range(SWEEP_EVERY - 3):
        limit.hit(f"caller-{i}", 30.0)
    limit.hit("busy", 61.0)  # the sweep comes with this request, a minute after "idle"'s
    assert "idle" not in limit
    assert "busy" in limit and "caller-0" in limit, "requests within the last minute are kept"
    assert limit.wait_s("busy", 61.0) == 0.0, "the request at 0.0 left the window at 60.0"
