"""The handlers import with the garbage collector paused; what they built is frozen out of later collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from humanos_bridge.cold_start import collector_paused


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to the collector, the next test finds it enabled and nothing frozen."""
    yield
    gc.unfreeze()
    gc.enable()


def test_inside_no_collection_runs_and_after_it_runs_again_without_the_objects_built_inside(collector: None) -> None:
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(phase))
    try:
        with collector_paused():
            assert not gc.isenabled()
            built = [[index] for index in range(50_000)]  # far past the young generation's threshold
            assert collections == []
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
    finally:
        gc.callbacks.pop()


def test_a_collector_that_was_off_stays_off(collector: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_an_import_that_fails_leaves_the_collector_running(collector: None) -> None:
    with pytest.raises(ModuleNotFoundError), collector_paused():
        import humanos_bridge.no_such_module  # noqa: F401
    assert gc.isenabled()
