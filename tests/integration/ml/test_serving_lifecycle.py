"""Serving while the registry and the loaded-model cache change under it: a model evicted
from the cache while a request holds it still answers that request, and an automatic
rollback never undoes a promotion made after it judged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pixelmill.backends.metadata.models import AliasRecord
from pixelmill.errors import Conflict
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.inference.rollback import RollbackWatcher
from pixelmill.settings import MLSettings
from pixelmill.settings_healing import RollbackSettings
from tests.conftest import make_settings
from tests.security import attacks

pytest.importorskip("onnx")
SPEC = {"task": "segmentation", "channels": 1, "multiple": 8}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    ml = MLSettings(loaded_models=1, default_model=False, resolve_ttl_s=0)
    built = build_container(make_settings(tmp_path, ml=ml))
    for name in ("a", "b"):
        built.models.register(attacks.conv_model(1), name=name, input_spec=SPEC)
    yield built
    built.close()


def test_a_model_evicted_while_a_request_holds_it_still_answers(container: Container) -> None:
    inference = container.inference
    image = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    held = inference.load("a:1")  # a request resolved and loaded a:1 ...
    inference.load("b:1")  # ... and another one's load evicted it (cache of one)
    assert [h["model"] for h in inference.loaded()] == ["b"]
    prediction = inference.run(held, image)  # the first request goes on: no 500
    assert prediction.mask is not None and prediction.mask.shape == (64, 64)


def test_concurrent_requests_over_more_models_than_the_cache_holds(
    container: Container,
) -> None:
    inference = container.inference
    image = (np.random.default_rng(1).random((64, 64)) * 255).astype(np.uint8)
    failures: list[BaseException] = []

    def serve(ref: str) -> None:
        for _ in range(15):
            try:
                inference.run(inference.load(ref), image)
            except BaseException as exc:  # every failure is the finding
                failures.append(exc)

    threads = [threading.Thread(target=serve, args=(r,)) for r in ("a:1", "b:1") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []


def test_an_alias_move_that_expects_another_holder_is_refused(container: Container) -> None:
    models = container.models.models
    container.models.register(attacks.conv_model(1), name="a", input_spec=SPEC)
    models.move_alias("a", "production", 1, action="promote", actor=None)
    with pytest.raises(Conflict):
        models.move_alias("a", "production", 2, action="promote", actor=None, expected=2)
    assert models.alias("a", "production").version == 1


def test_an_automatic_rollback_does_not_undo_a_promotion_made_while_it_judged(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, models = container.models, container.models.models
    for _ in range(2):  # a:2 and a:3
        registry.register(attacks.conv_model(1), name="a", input_spec=SPEC)
    registry.promote("a", 1, "production", actor="alice")
    registry.promote("a", 2, "production", actor="alice")
    watcher = RollbackWatcher(
        registry=registry,
        events=None,
        policy=RollbackSettings(min_predictions=1, max_error_rate=0.5, watch_window_s=600),
        drift_threshold=0.25,
        drift_min=20,
    )
    alias, calls = models.alias, []

    def alias_then_promote(model: str, name: str) -> AliasRecord:
        record = alias(model, name)
        calls.append(record.version)
        if len(calls) == 2:  # the watcher saw a:2 in production; now a person promotes 3
            models.move_alias(model, name, 3, action="promote", actor="alice")
        return record

    monkeypatch.setattr(models, "alias", alias_then_promote)
    watcher.observe(models.version("a", 2), ok=False, seconds=0.01)  # a:2 fails: breach
    monkeypatch.undo()
    assert models.alias("a", "production").version == 3  # the person's promotion stands
    assert [e.actor for e in models.audit("a") if e.action == "rollback"] == []
