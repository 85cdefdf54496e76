"""Dynamic batching: every caller gets its own output, batches form under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pixelmill.ml.batching import DynamicBatcher


def double(batch: np.ndarray) -> np.ndarray:
    return batch * 2 + np.arange(len(batch))[:, None, None, None] * 0  # shape-preserving


def test_concurrent_callers_get_their_own_results_in_batches() -> None:
    calls: list[int] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        threading.Event().wait(0.01)  # a runtime call takes time; others queue meanwhile
        return double(batch)

    batcher = DynamicBatcher(runner, max_batch=4, max_wait=0.05)
    inputs = [np.full((1, 8, 8), i, np.float32) for i in range(32)]
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda x: batcher.run([x])[0], inputs))
    batcher.close()
    for i, out in enumerate(outs):
        assert np.array_equal(out, np.full((1, 8, 8), 2 * i, np.float32))
    assert sum(calls) == 32 and max(calls) <= 4
    assert max(calls) > 1  # batching happened


def test_mixed_shapes_are_never_stacked_together() -> None:
    shapes: list[tuple[int, ...]] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        shapes.append(batch.shape)
        return batch + 1

    batcher = DynamicBatcher(runner, max_batch=8, max_wait=0.02)
    inputs = [np.zeros((1, 8 + 8 * (i % 2), 8), np.float32) for i in range(10)]
    outs = batcher.run(inputs)
    batcher.close()
    assert [o.shape for o in outs] == [x.shape for x in inputs]
    assert all(np.all(o == 1) for o in outs)
    assert sum(s[0] for s in shapes) == 10


def test_a_failing_runner_fails_every_caller_of_that_batch() -> None:
    def runner(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("runtime broke")

    batcher = DynamicBatcher(runner, max_batch=4, max_wait=0.0)
    with pytest.raises(RuntimeError, match="runtime broke"):
        batcher.run([np.zeros((1, 4, 4), np.float32)] * 3)
    batcher.close()


def test_a_lone_request_does_not_wait_for_company() -> None:
    import time

    batcher = DynamicBatcher(lambda b: b, max_batch=8, max_wait=2.0)
    started = time.perf_counter()
    batcher.run([np.zeros((1, 4, 4), np.float32)])
    assert time.perf_counter() - started < 1.0  # far below max_wait
    batcher.close()


def test_batches_stay_within_the_pixel_budget() -> None:
    """Three 256 x 256 inputs per batch at most, larger ones alone: bigger batches spill
    the CPU caches and run slower per image than single runs."""
    sizes: list[tuple[int, ...]] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        sizes.append(batch.shape)
        threading.Event().wait(0.005)
        return batch

    batcher = DynamicBatcher(runner, max_batch=8, max_wait=0.05)
    small = [np.zeros((1, 256, 256), np.float32)] * 12
    large = [np.zeros((1, 512, 512), np.float32)] * 3
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda x: batcher.run([x]), small + large))
    batcher.close()
    by_side = {side: [n for n, _, h, _ in sizes if h == side] for side in (256, 512)}
    assert sum(by_side[256]) == 12 and 1 < max(by_side[256]) <= 3
    assert by_side[512] == [1, 1, 1]


def test_the_service_setting_and_the_library_share_one_pixel_budget() -> None:
    from pixelmill.ml.batching import BATCH_PIXELS
    from pixelmill.settings import MLSettings

    # settings stay free of numpy, so the default is written twice; they must agree
    assert MLSettings().max_batch_pixels == BATCH_PIXELS


def test_a_lone_input_runs_in_its_callers_thread() -> None:
    """Nothing queued and the runtime idle: no hand-off to the worker and back."""
    threads: list[threading.Thread] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread())
        return batch + 1

    batcher = DynamicBatcher(runner, max_batch=8, max_wait=0.05)
    out = batcher.run([np.zeros((1, 4, 4), np.float32)])
    batcher.close()
    assert threads == [threading.current_thread()]
    assert np.all(out[0] == 1) and out[0].shape == (1, 4, 4)
    assert (batcher.batches, batcher.items) == (1, 1)


def test_runtime_calls_never_overlap_whoever_runs_them() -> None:
    """Lone callers in their own threads and the worker's batches take turns: one
    runtime call at a time, every caller gets its own result."""
    lock = threading.Lock()
    running, most = 0, 0

    def runner(batch: np.ndarray) -> np.ndarray:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.002)
        with lock:
            running -= 1
        return double(batch)

    batcher = DynamicBatcher(runner, max_batch=4, max_wait=0.01)
    inputs = [np.full((1, 8, 8), i, np.float32) for i in range(120)]
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda x: batcher.run([x])[0], inputs))
    batcher.close()
    assert most == 1
    for i, out in enumerate(outs):
        assert np.array_equal(out, np.full((1, 8, 8), 2 * i, np.float32))
    assert batcher.items == 120


def test_a_lone_input_that_fails_raises_in_its_caller_and_frees_the_runtime() -> None:
    calls: list[int] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("runtime broke")
        return batch

    batcher = DynamicBatcher(runner, max_batch=4)
    with pytest.raises(RuntimeError, match="runtime broke"):
        batcher.run([np.zeros((1, 4, 4), np.float32)])
    assert (batcher.batches, batcher.items) == (0, 0)  # a failure is no batch served
    assert batcher.run([np.ones((1, 2, 2), np.float32)])[0].sum() == 4  # free again
    batcher.close()
    assert (batcher.batches, batcher.items) == (1, 1)


def test_a_closed_batcher_still_answers_in_the_callers_thread() -> None:
    """Its model was evicted from the serving cache while a request still held it."""
    batcher = DynamicBatcher(double, max_batch=4)
    batcher.close()
    x = np.ones((1, 8, 8), np.float32)
    assert np.array_equal(batcher.run([x, x])[1], 2 * x)
    assert np.array_equal(batcher.run([x])[0], 2 * x)
