"""Drift: the flag fires on shifted inputs and stays down on matching ones."""

from __future__ import annotations

import numpy as np

from pixelmill.ml import drift, synthetic

CFG = synthetic.NucleiConfig(size=(64, 64))


def reference() -> dict:
    return drift.reference([synthetic.nuclei_sample(0, i, CFG)[0] for i in range(60)])


def test_matching_inputs_do_not_flag() -> None:
    flags: list[drift.DriftState] = []
    monitor = drift.DriftMonitor(reference(), window=40, min_samples=20, on_flag=flags.append)
    for i in range(40):  # fresh samples of the same generator (different seed)
        state = monitor.observe(synthetic.nuclei_sample(1, i, CFG)[0])
    assert not state.flagged and not flags
    assert state.score < 0.25


def test_shifted_inputs_flag_once_and_report_ks() -> None:
    flags: list[drift.DriftState] = []
    monitor = drift.DriftMonitor(reference(), window=40, min_samples=20, on_flag=flags.append)
    for i in range(30):  # an overexposed camera: everything near white
        image = synthetic.nuclei_sample(2, i, CFG)[0].astype(np.float64)
        bright = np.clip(image / image.max() * 0.3 + 0.7, 0, 1)
        state = monitor.observe((bright * 255).astype(np.uint8))
    assert state.flagged and state.score > 0.25
    assert len(flags) == 1  # one event per upward crossing
    assert state.ks["mean"]["p_value"] < 0.01


def test_no_flag_before_min_samples() -> None:
    monitor = drift.DriftMonitor(reference(), window=40, min_samples=20)
    state = monitor.observe(np.full((64, 64), 255, np.uint8))
    assert state.score > 0.25 and not state.flagged


def test_psi_and_ks_basics() -> None:
    even = np.full(8, 1 / 8)
    assert drift.psi(even, even) == 0
    assert drift.psi(even, np.eye(8)[0]) > 1
    d, p = drift.ks(np.arange(100.0), np.arange(100.0))
    assert d == 0 and p > 0.99
    d, p = drift.ks(np.arange(100.0), np.arange(100.0) + 80)
    assert d > 0.7 and p < 1e-6
