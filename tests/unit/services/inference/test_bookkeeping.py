"""Drift bookkeeping waits while a prediction is being answered, and never loses an
image: a flush or a close counts at once whatever is being answered."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pixelmill.ml.drift import DriftMonitor, reference
from pixelmill.services.inference import bookkeeping
from pixelmill.services.inference.bookkeeping import Bookkeeper, answering

IMAGE = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)


def served_model() -> Any:
    """What the bookkeeper reads of a loaded model: its version and drift monitor."""
    version = SimpleNamespace(model="m", version=1, ref="m:1")
    monitor = DriftMonitor(reference([IMAGE]))
    return SimpleNamespace(version=version, drift=monitor, drift_state={})


@pytest.fixture(autouse=True)
def long_defer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bookkeeping, "MAX_DEFER_S", 600.0)  # only a pause counts


def test_an_image_is_counted_once_its_answer_is_done() -> None:
    keeper, loaded = Bookkeeper(16), served_model()
    with keeper.serving():
        keeper.submit(loaded, IMAGE, 0.01)
        threading.Event().wait(0.05)
        assert loaded.drift.state().window == 0  # held off while answering
    keeper.flush()
    assert loaded.drift.state().window == 1
    keeper.close()


def test_a_flush_counts_at_once_even_while_answering() -> None:
    keeper, loaded = Bookkeeper(16), served_model()
    with keeper.serving():
        keeper.submit(loaded, IMAGE, 0.01)
        flushing = threading.Thread(target=keeper.flush)
        flushing.start()
        flushing.join(timeout=30)
        assert not flushing.is_alive()  # did not wait for the answer to end
        assert loaded.drift.state().window == 1
    keeper.close()


def test_closing_while_answering_loses_nothing() -> None:
    keeper, loaded = Bookkeeper(16), served_model()
    with keeper.serving():
        for _ in range(5):
            keeper.submit(loaded, IMAGE, 0.01)
        keeper.close()
    assert loaded.drift.state().window == 5


def test_answering_methods_hold_the_bookkeeping_off_while_they_run() -> None:
    class Service:
        def __init__(self) -> None:
            self.bookkeeper = Bookkeeper(16)
            self.loaded = served_model()

        @answering
        def predict(self, n: int) -> int:
            self.bookkeeper.submit(self.loaded, IMAGE, 0.01)
            threading.Event().wait(0.05)
            return self.loaded.drift.state().window + n  # not counted yet

    service = Service()
    assert service.predict(10) == 10
    service.bookkeeper.flush()
    assert service.loaded.drift.state().window == 1
    service.bookkeeper.close()


def counted_soon(loaded: Any, window: int) -> bool:
    """Whether the drift window reaches ``window`` within 30 s (the thread's own pace)."""
    for _ in range(3000):
        if loaded.drift.state().window >= window:
            return True
        threading.Event().wait(0.01)
    return False


def test_an_image_is_counted_while_an_answer_is_inside_a_runtime_that_leaves_a_core() -> None:
    """ONNX Runtime releases the GIL: counting beside it slows no answering thread, when
    the runtime leaves a core free."""
    keeper, loaded = Bookkeeper(16, beside_runtime=True), served_model()
    with keeper.serving():
        keeper.submit(loaded, IMAGE, 0.01)  # an earlier prediction's image
        # the service inside the gateway: one answer, not two
        with keeper.serving(), keeper.in_runtime():
            assert counted_soon(loaded, 1)
    keeper.close()


def test_a_runtime_on_every_core_is_left_alone_until_the_answer_ends() -> None:
    keeper, loaded = Bookkeeper(16), served_model()  # the runtime takes every core
    with keeper.serving():
        keeper.submit(loaded, IMAGE, 0.01)
        with keeper.serving(), keeper.in_runtime():
            threading.Event().wait(0.1)
            assert loaded.drift.state().window == 0  # held off inside the runtime too
    assert counted_soon(loaded, 1)  # and counted once nothing is answered
    keeper.close()


def test_counting_beside_the_runtime_needs_a_core_it_leaves_free() -> None:
    # inference_threads 0 is one runtime thread per core
    assert [bookkeeping.leaves_a_core(t, cores=4) for t in (0, 1, 3, 4, 8)] == [
        False,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(("threads", "beside"), [(0, False), (1, True), (4, False)])
def test_the_platforms_inference_counts_beside_the_runtime_as_its_threads_allow(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, threads: int, beside: bool
) -> None:
    from pixelmill.runtime.container import build_container
    from tests.conftest import make_settings

    monkeypatch.setattr(bookkeeping.os, "cpu_count", lambda: 4)
    container = build_container(make_settings(tmp_path, ml={"inference_threads": threads}))
    try:
        assert container.inference.bookkeeper.beside_runtime is beside
    finally:
        container.close()
