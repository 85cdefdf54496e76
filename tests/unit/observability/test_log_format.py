"""Log lines: JSON off a terminal, text on one, the context fields of the request or job
in hand on every line, and secrets replaced by ``***`` wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from pixelmill.observability import context
from pixelmill.observability.logging import configure_logging
from pixelmill.settings import ObservabilitySettings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def log_into(stream: io.StringIO, log_format: str = "auto") -> logging.Logger:
    configure_logging(ObservabilitySettings(log_level="INFO", log_format=log_format), stream=stream)
    return logging.getLogger("pixelmill.test")


def test_auto_writes_json_to_a_pipe_and_text_to_a_terminal() -> None:
    pipe, tty = io.StringIO(), Terminal()
    log_into(pipe).info("hello %s", "pipe")
    log_into(tty).info("hello %s", "tty")
    entry = json.loads(pipe.getvalue())
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "INFO",
        "pixelmill.test",
        "hello pipe",
    )
    assert "INFO pixelmill.test: hello tty" in tty.getvalue()
    forced = io.StringIO()
    log_into(forced, "text").info("plain")
    assert forced.getvalue().rstrip().endswith("pixelmill.test: plain")


def test_lines_carry_the_request_user_study_job_and_task_they_belong_to() -> None:
    out = io.StringIO()
    log = log_into(out, "json")
    info = context.RequestInfo(
        context.request_id_from("req-42"), {"path_params": {"study_id": "s1"}}
    )
    token = context.begin_request(info)
    try:
        context.set_user("vic")
        log.info("in a request")
        with context.job_scope("job9", 3):
            log.info("in a task")
    finally:
        context.end_request(token)
    log.info("outside")
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["request_id"] == "req-42" and first["user"] == "vic" and first["study"] == "s1"
    assert "job_id" not in first
    assert (second["job_id"], second["task_id"]) == ("job9", "3")
    assert not {"request_id", "user", "job_id"} & third.keys()


def test_a_request_id_that_is_not_a_plain_id_is_replaced() -> None:
    assert context.request_id_from("abc-123.x") == "abc-123.x"
    for bad in ("a b", "x\ninjected", "", None, "z" * 200):
        made = context.request_id_from(bad)
        assert made != bad and len(made) == 32


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("auth failed for pm_abc123_Zx9y8W7v6U5t4S3r2Q1p", "Zx9y8W7v6U5t4S3r2Q1p"),
        ("header Authorization: Bearer s3cr3t-token-value", "s3cr3t-token-value"),
        ("GET /v1/images/x/render?w=10&sig=AbCdEf123456&expires=9", "AbCdEf123456"),
        ('body {"username": "vic", "password": "hunter2!"}', "hunter2!"),
        ("cookie pm_session=SessionSecret123; path=/", "SessionSecret123"),
        ("headers {'x-csrf-token': 'CsrfSecret456'}", "CsrfSecret456"),
        ("form password=hunter3&user=vic", "hunter3"),
    ],
)
def test_secrets_are_replaced_wherever_they_appear(line: str, secret: str) -> None:
    out = io.StringIO()
    log_into(out, "text").warning("%s", line)
    log_into(out, "json").warning("%s", line)
    assert secret not in out.getvalue()
    assert out.getvalue().count("***") >= 2
