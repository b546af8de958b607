"""The server's garbage-collector policy (server/gc_policy.py): start-up frozen, young objects kept longer."""

import gc
from collections.abc import Iterator

import pytest

from server.gc_policy import YOUNG_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Give the test process its collector back as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_startup_objects_and_raises_only_the_young_threshold() -> None:
    built_at_startup = {"graph": [object() for _ in range(10)]}  # a container tracked by the collector
    _, middle, old = gc.get_threshold()

    settle_after_startup()

    assert gc.get_freeze_count() > 0
    assert not any(built_at_startup is o for o in gc.get_objects()), "frozen objects are never scanned again"
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    made_after = {"bar": [1, 2]}
    assert any(made_after is o for o in gc.get_objects()), "what comes after start-up is still collected"
