"""The training loop: repeatable with a seed, cancellable, exports ONNX equal to torch,
and tiled/batched serving of the export equals whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from pixelmill.ml import datasets, export, synthetic, training
from pixelmill.ml.onnx_model import OnnxModel
from pixelmill.ml.spec import TrainSpec
from tests.ml_helpers import TINY_SPEC, nuclei_zip, png, train_tiny, zip_of


@pytest.fixture(scope="module")
def tiny() -> object:
    return train_tiny()


@pytest.mark.slow
def test_same_seed_gives_the_same_run() -> None:
    parsed = datasets.parse(nuclei_zip())
    a = training.train(TrainSpec(**TINY_SPEC, seed=7), parsed)
    b = training.train(TrainSpec(**TINY_SPEC, seed=7), parsed)
    c = training.train(TrainSpec(**TINY_SPEC, seed=8), parsed)
    assert a.history == b.history
    sa, sb, sc = a.network.state_dict(), b.network.state_dict(), c.network.state_dict()
    assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)
    assert any(not np.array_equal(sa[k].numpy(), sc[k].numpy()) for k in sa)


def test_progress_reports_epochs_and_cancel_stops_training() -> None:
    parsed = datasets.parse(nuclei_zip())
    events: list[dict] = []
    stop = {"now": False}

    def on_progress(event: dict) -> None:
        events.append(event)
        stop["now"] = True  # the user cancels after the first epoch

    with pytest.raises(training.TrainingCancelled):
        training.train(
            TrainSpec(**{**TINY_SPEC, "epochs": 50}), parsed, on_progress, lambda: stop["now"]
        )
    assert len(events) == 1
    assert {"epoch", "epochs", "loss", "metrics", "eta_seconds"} <= set(events[0])
    assert events[0]["epochs"] == 50 and "dice" in events[0]["metrics"]


def test_without_a_validation_split_the_loss_is_not_called_a_validation_loss(
    tiny: object,
) -> None:
    # given a dataset uploaded with val_fraction=0: nothing to validate on
    parsed = datasets.parse(nuclei_zip(), val_fraction=0)
    assert parsed.split["val"] == []
    result = training.train(TrainSpec(**TINY_SPEC), parsed)
    # then the version's metrics carry the best epoch's training loss as "loss" and no
    # validation score at all (it was {"val_loss": <the training loss>})
    best = min(h["loss"] for h in result.history)
    assert result.metrics == {"loss": pytest.approx(best, abs=1e-6)}
    assert all(set(h) == {"epoch", "loss"} for h in result.history)
    # while a run with a validation split still reports its validation loss
    with_val = tiny.result.metrics  # type: ignore[attr-defined]
    assert "val_loss" in with_val and "dice" in with_val and "loss" not in with_val


def test_onnx_export_matches_torch(tiny: object) -> None:
    diff = export.check(tiny.onnx, tiny.network, tiny.spec, atol=1e-4)  # type: ignore[attr-defined]
    assert diff < 1e-4


def test_tiled_inference_equals_untiled(tiny: object) -> None:
    image, _ = synthetic.nuclei_sample(3, 0, synthetic.NucleiConfig(size=(150, 190)))
    whole = OnnxModel(tiny.onnx, tiny.spec, tile=512, batching=False)  # type: ignore[attr-defined]
    tiled = OnnxModel(tiny.onnx, tiny.spec, tile=64, overlap=32, batching=True)  # type: ignore[attr-defined]
    p_whole, n_whole = whole.probability(image)
    p_tiled, n_tiled = tiled.probability(image)
    tiled.close()
    assert n_whole == 1 and n_tiled > 4
    assert p_whole.shape == p_tiled.shape == (150, 190)
    assert np.abs(p_whole - p_tiled).max() < 1e-3


def test_early_stopping_and_classification() -> None:
    rng = np.random.default_rng(0)
    files = {}
    for i in range(6):
        files[f"images/dark/d{i}.png"] = png((rng.random((20, 20)) * 60).astype(np.uint8))
        files[f"images/bright/b{i}.png"] = png((150 + rng.random((20, 20)) * 100).astype(np.uint8))
    parsed = datasets.parse(zip_of(files), task="classification", val_fraction=0.34)
    spec = TrainSpec(
        task="classification",
        epochs=30,
        steps_per_epoch=1,
        batch_size=4,
        width=4,
        depth=2,
        image_size=16,
        patience=1,
        threads=1,
        lr=1e-6,
    )
    result = training.train(spec, parsed)
    assert result.stopped_early and result.epochs_run < 30
    assert {"accuracy", "f1"} <= set(result.metrics)
    onnx = export.to_onnx(result.network, result.input_spec)
    export.check(onnx, result.network, result.input_spec)
    served = OnnxModel(onnx, result.input_spec, batching=False).predict(
        np.zeros((30, 25), np.uint8)
    )
    assert served.label in ("bright", "dark") and abs(sum(served.scores.values()) - 1) < 1e-5


def test_an_interrupted_run_resumes_from_its_last_epoch_and_ends_the_same() -> None:
    parsed = datasets.parse(nuclei_zip())
    spec = TrainSpec(**{**TINY_SPEC, "epochs": 3, "patience": 10}, seed=3)
    whole = training.train(spec, parsed)

    # the same run, killed during epoch 2: only the state saved after epoch 1 survives
    saved: list[bytes] = []
    events: list[dict] = []

    def stop_in_epoch_2() -> bool:
        return len(saved) == 1 and len(events) == 1

    with pytest.raises(training.TrainingCancelled):
        training.train(spec, parsed, events.append, stop_in_epoch_2, on_epoch=saved.append)
    assert len(saved) == 1

    resumed_events: list[dict] = []
    resumed = training.train(spec, parsed, resumed_events.append, resume=saved[0])
    # it went on with epoch 2, not from the start, and ended exactly where the whole run did
    assert [e["epoch"] for e in resumed_events] == [2, 3]
    assert resumed.history == whole.history
    sw, sr = whole.network.state_dict(), resumed.network.state_dict()
    assert all(np.array_equal(sw[k].numpy(), sr[k].numpy()) for k in sw)

    # a state saved for another spec is not used: that run starts at epoch 1
    other = TrainSpec(**{**TINY_SPEC, "epochs": 2, "patience": 10}, seed=4)
    fresh: list[dict] = []
    training.train(other, parsed, fresh.append, resume=saved[0])
    assert [e["epoch"] for e in fresh] == [1, 2]


def test_a_distance_head_trains_on_label_masks_and_serves_its_distance_map() -> None:
    # a dataset of instance label masks, as `synth-nuclei --labels` writes
    cfg = synthetic.NucleiConfig(size=(64, 64))
    pairs = [(f"n{i}", *synthetic.nuclei_labelled(0, i, cfg)) for i in range(6)]
    parsed = datasets.parse(
        datasets.build_archive([(n, im, lab.astype(np.uint16)) for n, im, lab in pairs])
    )
    result = training.train(TrainSpec(**TINY_SPEC, head="distance"), parsed)
    assert result.input_spec.head == "distance"
    onnx = export.to_onnx(result.network, result.input_spec)
    assert export.check(onnx, result.network, result.input_spec, atol=1e-4) < 1e-4
    model = OnnxModel(onnx, result.input_spec, batching=False)
    prediction = model.predict(pairs[0][1])
    assert prediction.distance is not None and prediction.distance.shape == (64, 64)
    assert prediction.distance.min() >= 0 and prediction.distance.max() <= 1
    labels = model.spec.objects(prediction.mask > 0, prediction.distance)
    assert labels.shape == (64, 64)
