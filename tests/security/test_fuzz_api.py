"""The attack of a fuzzer: schemathesis sends schema-shaped and malformed requests to every
operation of the OpenAPI document, as the admin, as a member and anonymously, with the
ids of real data (an image, finished jobs with results, a dataset, a model version, a
study with a patient, an annotation, a thread and a message) mixed with generated ones,
then chains calls statefully through the links it infers. No request may answer 5xx,
and where the schema declares a response, the response must match it.

Deterministic: a fixed seed, derandomized, bounded examples per operation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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

#: examples per operation, and steps of the stateful run; the whole module stays well
#: under three minutes on two shared cores
EXAMPLES = 12
STATEFUL_EXAMPLES = 12
SEED = 18

#: operations that change who may call (run last, the key deletion very last), so they
#: cannot lock the fuzzer out before the rest of the API is covered
LAST = ("DELETE /v1/keys/{key_id}", "POST /v1/auth/logout")


@schemathesis.serializer("application/zip")
def _zip(_: Any, value: Any) -> bytes:
    """Archive bodies as the bytes generated (an archive of the real study is an example)."""
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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, fuzz_world.World]]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    settings = Settings(  # type: ignore[arg-type]
        data_dir=data,
        ratelimit={"enabled": False},  # budgets are tested apart; here every request counts
        workspace={"stream_max_s": 0.3},  # a live stream ends, as after an hour by default
    )
    container = build_container(settings)
    app = create_app(container)
    with TestClient(app, raise_server_exceptions=False) as client:
        seeded = fuzz_world.build(client, container)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())
        _install_hooks(schema, seeded)
        yield schema, seeded
    container.close()


def _real_ids(world: fuzz_world.World, path: str, name: str) -> list[str]:
    if name == "name" and not path.startswith("/v1/models"):
        return world.ids.get("result", [])
    return world.ids.get(name, [])


def _install_hooks(schema: Any, world: fuzz_world.World) -> None:
    """Path ids: a real one or the generated one; credentials: admin, member or none."""
    people = [world.admin, world.member, {}]

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        path = context.operation.path
        choices = {
            name: st.sampled_from([*_real_ids(world, path, name), value])
            for name, value in path_parameters.items()
        }
        return st.fixed_dictionaries(choices)

    @schema.hook
    def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
        return st.sampled_from(people).map(lambda who: {**(headers or {}), **who})


def _ordered(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]

    def rank(op: Any) -> tuple[int, int]:
        label = f"{op.method.upper()} {op.path}"
        last = LAST.index(label) + 1 if label in LAST else 0
        return (last, op.method.lower() == "delete")

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


def _call(case: Any) -> None:
    case.call_and_validate()


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
        t0 = time.monotonic()
        try:
            fuzz()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # each operation's first failure, all reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
        print("TIME", round(time.monotonic() - t0, 2), operation.method, operation.path)
    assert not failures, "\n\n".join(failures)


def test_no_chain_of_calls_answers_a_server_error(world: Any) -> None:
    schema, _ = world
    machine = schema.as_state_machine()
    machine.run(settings=_settings(STATEFUL_EXAMPLES))


def test_the_known_overflow_is_in_the_fuzzed_surface(world: Any) -> None:
    """The fuzzer reaches the task-result route the issue named (not excluded)."""
    schema, _ = world
    paths = {op.path for op in _ordered(schema)}
    assert "/v1/jobs/{job_id}/tasks/{index}/results/{name}" in paths
