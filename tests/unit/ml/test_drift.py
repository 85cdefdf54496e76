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
    for i in range(30):  # brightfield instead of fluorescence: dark nuclei on white
        image = synthetic.nuclei_sample(2, i, CFG)[0].astype(np.float64)
        inverted = 1 - image / image.max()
        state = monitor.observe((inverted * 255).astype(np.uint8))
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


def _bit_depths(scene: np.ndarray) -> dict[str, np.ndarray]:
    """One scene (floats 0..1) as a camera would save it: 8-bit, 12-bit in a 16-bit PNG
    (values 0..4095), and full 16-bit."""
    return {
        "8-bit": np.round(scene * 255).astype(np.uint8),
        "12-in-16-bit": np.round(scene * 4095).astype(np.uint16),
        "16-bit": np.round(scene * 65535).astype(np.uint16),
    }


def _scene(seed: int, index: int) -> np.ndarray:
    image = synthetic.nuclei_sample(seed, index, CFG)[0]
    return image.astype(np.float64) / float(np.iinfo(image.dtype).max)


def test_the_same_images_at_8_12_in_16_and_16_bit_flag_no_drift() -> None:
    # given a reference from 8-bit training images
    ref = drift.reference([_bit_depths(_scene(0, i))["8-bit"] for i in range(60)])
    for depth in ("8-bit", "12-in-16-bit", "16-bit"):
        # when the same kind of scenes are served at another bit depth
        monitor = drift.DriftMonitor(ref, window=40, min_samples=20)
        for i in range(40):
            state = monitor.observe(_bit_depths(_scene(1, i))[depth])
        # then no drift is flagged: the model sees the same normalised input
        assert not state.flagged, (depth, state.score)
        assert state.score < 0.1, (depth, state.score)


def test_bit_depth_does_not_change_the_features() -> None:
    versions = _bit_depths(_scene(3, 0))
    feats = {k: drift.image_features(v)[0] for k, v in versions.items()}
    for key in ("mean", "p50", "p99"):
        assert abs(feats["12-in-16-bit"][key] - feats["16-bit"][key]) < 0.01
        assert abs(feats["8-bit"][key] - feats["16-bit"][key]) < 0.02


def test_an_old_reference_is_not_compared() -> None:
    # a version-1 reference was computed in the dtype's range: comparing would be wrong
    old = {**reference(), "version": 1}
    monitor = drift.DriftMonitor(old, window=40, min_samples=1)
    state = monitor.observe(np.full((64, 64), 4095, np.uint16))
    assert not state.flagged and state.window == 0
    assert "outdated" in state.to_dict()["reference"]


def test_the_flag_note_reads_back_as_numbers() -> None:
    state = drift.DriftState(score=0.41234, flagged=True, window=50, threshold=0.25, ks={})
    note = drift.flag_note(state)
    assert drift.parse_flag_note(note) == {"score": 0.412, "threshold": 0.25, "window": 50.0}
    assert drift.parse_flag_note("promoted by hand") is None
    assert drift.parse_flag_note(None) is None


def _features_in_two_steps(image: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """The features as the model's input is made: normalise the sampled plane, then take
    the normalised values' percentiles (what ``image_features`` does in one selection)."""
    from pixelmill.ml.preprocess import SAMPLE, normalize, percentiles, to_planes

    rows, cols = image.shape[:2]
    step = max(1, int(np.sqrt(rows * cols / SAMPLE)))
    unit = normalize(to_planes(image[::step, ::step], 1), 1.0, 99.8).ravel()
    p1, p50, p99 = percentiles(unit, [1, 50, 99])
    low, high = drift.RANGE
    bins = np.clip(((unit - low) / (high - low) * drift.BINS).astype(np.int64), 0, drift.BINS - 1)
    hist = np.bincount(bins, minlength=drift.BINS).astype(np.float64)
    feats = {"mean": float(unit.mean()), "std": float(unit.std()), "p1": p1, "p50": p50}
    return {**feats, "p99": p99, "rows": float(rows), "cols": float(cols)}, hist / hist.sum()


def test_features_equal_the_model_inputs_percentiles_bit_for_bit() -> None:
    # the same numbers as normalising first, on every dtype, odd sizes, flat images
    rng = np.random.default_rng(3)
    images = [
        synthetic.nuclei_sample(4, 0, synthetic.NucleiConfig(size=(256, 256)))[0],
        rng.integers(0, 4096, (300, 301), dtype=np.uint16),
        rng.integers(0, 255, (17, 5, 3), dtype=np.uint8),
        rng.normal(100, 30, (129, 64)).astype(np.float32),
        np.full((40, 40), 7, np.uint16),
        np.zeros((1, 1), np.uint8),
    ]
    for image in images:
        feats, hist = drift.image_features(image, drift.space(None))
        want, want_hist = _features_in_two_steps(image)
        assert feats == want and np.array_equal(hist, want_hist), image.shape


def test_ks_against_a_prepared_sample_is_ks_over_the_concatenation() -> None:
    rng = np.random.default_rng(5)
    for a, b in [
        (rng.normal(0, 1, 1275), rng.normal(0.2, 1, 200)),
        (np.repeat(np.arange(10.0), 30), np.repeat(np.arange(3.0, 8.0), 7)),  # ties
        (np.arange(5.0), np.arange(100.0, 103.0)),
    ]:
        grid = np.concatenate([np.sort(a), np.sort(b)])
        cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
        cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
        d = float(np.max(np.abs(cdf_a - cdf_b)))
        assert drift.ks(drift.SortedSample(a), b)[0] == drift.ks(a, b)[0] == d
        assert drift.ks(drift.SortedSample(a), b) == drift.ks(a, b)
