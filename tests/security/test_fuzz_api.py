"""The attack of a fuzzer: schemathesis sends schema-shaped and malformed requests to every
operation of the OpenAPI document, as the admin, as a member and anonymously, with the
ids of real data (an image, finished jobs with results, a dataset, a model version, a
study with a patient, an annotation, a thread and a message) mixed with generated ones,
then chains calls statefully through the links it infers. No request may answer 5xx,
and where the schema declares a response, the response must match it.

Deterministic: a fixed seed, derandomized, bounded examples per operation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings
from tests.security import fuzz_world

pytestmark = pytest.mark.slow

#: examples per operation, and steps of the stateful run; the whole module stays well
#: under three minutes on two shared cores
EXAMPLES = 20
STATEFUL_EXAMPLES = 20
SEED = 18

#: operations that change the seeded world for every later call (archive the study,
#: disable a user, change a password), run after the others; deletions after them, and
#: the ones that lock the fuzzer out (revoke its key, end its session) very last
LATE = (
    "POST /v1/studies/{study_id}/status",
    "PATCH /v1/users/{user_id}",
    "POST /v1/users/{user_id}/password",
    "POST /v1/auth/password",
)
LAST = ("DELETE /v1/keys/{key_id}", "POST /v1/auth/logout")


@schemathesis.serializer("application/zip")
def _zip(_: Any, value: Any) -> bytes:
    """Zip bodies (study archives) are sent as generated: schemathesis has no zip writer,
    so this probes the archive import with bytes that are not archives."""
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _config() -> Any:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
            },
            "generation": {"database": "none", "deterministic": True},
        }
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, fuzz_world.World]]:
    """A fresh platform with the seeded data, for each run (a run deletes things)."""
    data = tmp_path / "data"
    settings = Settings(  # type: ignore[arg-type]
        data_dir=data,
        ratelimit={"enabled": False},  # budgets are tested apart; here every request counts
        workspace={"stream_max_s": 0.3},  # a live stream ends, as after an hour by default
        # no answer may depend on how long ago something was cached: the stateful run
        # puts the world back before each example (fuzz_world.thaw), and an example must
        # meet the world the one before it met, whatever the clock says
        security={"key_cache_s": 0},
        quota={"cache_s": 0, "jobs_count_s": 0},
    )
    container = build_container(settings)
    app = create_app(container)
    with TestClient(app, raise_server_exceptions=False) as client:
        seeded = fuzz_world.build(client, container)
        # the world holds still while it is fuzzed: jobs the fuzzer submits stay queued
        # rather than finishing on background threads at moments that differ from run to
        # run (a stateful run must answer the same way when Hypothesis replays it)
        container.job_daemon.stop()
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())
        _install_hooks(schema, seeded)
        yield schema, seeded
    container.close()


def _real_ids(world: fuzz_world.World, path: str, name: str) -> list[str]:
    if name == "name" and not path.startswith("/v1/models"):
        return world.ids.get("result", [])
    return world.ids.get(name, [])


def _install_hooks(schema: Any, world: fuzz_world.World) -> None:
    """Path ids: a real one or the generated one (or a set of real ones that belong
    together); credentials: admin, member or none."""
    anyone = st.one_of(st.just(world.admin), st.sampled_from([world.member, {}]))

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        path = context.operation.path
        choices = {}
        for name, value in path_parameters.items():
            real = _real_ids(world, path, name)
            choices[name] = (
                st.one_of(st.sampled_from(real), st.just(value)) if real else st.just(value)
            )
        mixed = st.fixed_dictionaries(choices)
        together = world.together.get(path)
        # the coherent set first: Hypothesis tries each branch's simplest example early,
        # so a read of a real task's artifact is made whatever order the draws come in
        return st.one_of(st.sampled_from(together), mixed) if together else mixed

    @schema.hook
    def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
        return anyone.map(lambda who: {**(headers or {}), **who})


def _ordered(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]

    def rank(op: Any) -> tuple[int, int]:
        label = f"{op.method.upper()} {op.path}"
        if label in LAST:
            return (3, LAST.index(label))
        if op.method.lower() == "delete":
            return (2, 0)
        return (int(label in LATE), 0)

    return sorted(operations, key=rank)


def _settings(examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )


def test_no_chain_of_calls_answers_a_server_error(world: Any, tmp_path: Path) -> None:
    """Stateful: schemathesis infers links between operations (ids in one response fed to
    the next call) and walks chains of calls; each response is checked as above. Every
    example starts from the world as seeded (:func:`fuzz_world.thaw`)."""
    schema, _ = world
    data, frozen = tmp_path / "data", tmp_path / "frozen"
    fuzz_world.freeze(data, frozen)
    steps: list[str] = []
    failed: list[str] = []

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def __init__(self) -> None:
            fuzz_world.thaw(data, frozen)
            super().__init__()

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            steps.append(f"{case.operation.method.upper()} {case.operation.path}")

        def step(self, input: Any) -> Any:
            # the first failing call, said here: Hypothesis replays a failing run to report
            # it, and a replay on the world the run has changed can go another way
            try:
                return super().step(input)
            except Exception as exc:
                case = input.case
                failed.append(f"{case.operation.method.upper()} {case.operation.path}: {exc}")
                raise

    try:
        Chains.run(settings=_settings(STATEFUL_EXAMPLES))
    except Exception as exc:
        raise AssertionError(f"first failing call: {failed[:1]}"[:3000]) from exc
    assert len(set(steps)) > 10, steps


#: reads of each kind of seeded data that the fuzzer must get an answer from (2xx)
REACHED = {
    "GET /v1/images/{image_id}/meta",
    "GET /v1/images/{image_id}/render",
    "GET /v1/jobs/{job_id}/results",
    "GET /v1/jobs/{job_id}/tasks/{index}/results/{name}",
    "GET /v1/datasets/{dataset_id}",
    "GET /v1/models/{name}/versions/{version}",
    "GET /v1/models/{ref}/health",
    "GET /v1/studies/{study_id}/patients/{patient_id}",
    "GET /v1/studies/{study_id}/images/{image_id}/annotations/{annotation_id}",
    "GET /v1/studies/{study_id}/threads/{thread_id}/messages",
    "GET /v1/studies/{study_id}/messages/{message_id}/edits",
    "GET /v1/studies/{study_id}/analyses/{analysis_id}",
}

#: operation label -> the statuses it answered
SEEN: dict[str, set[int]] = {}


def _call(case: Any) -> None:
    response = case.call_and_validate()
    SEEN.setdefault(f"{case.operation.method.upper()} {case.operation.path}", set()).add(
        response.status_code
    )


def test_no_operation_answers_a_server_error_to_fuzzed_requests(world: Any) -> None:
    schema, _ = world
    failures: list[str] = []
    for operation in _ordered(schema):
        fuzz = build_operation_test(
            config=schema.config,
            operation=operation,
            test_func=_call,
            given_kwargs={},
            feedback=FeedbackSources(),
            explicit_settings=_settings(EXAMPLES),
        )
        try:
            fuzz()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # each operation's first failure, all reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    # and the ids were real: reads of each kind of seeded data got past 404
    succeeded = {label for label, codes in SEEN.items() if any(200 <= c < 300 for c in codes)}
    assert not REACHED - succeeded, sorted(REACHED - succeeded)
