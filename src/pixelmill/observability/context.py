"""What every log line is about: the request, job, task, user and study in hand, and the
trace it belongs to, carried in :mod:`contextvars` and stamped on records by
:class:`ContextFilter`.

The gateway's request middleware opens a :class:`RequestInfo` per request (its id comes
from ``X-Request-ID`` or is made up), authentication names the user on it, and the job,
task and study come from the matched route's path parameters, read only when a line is
actually logged. A worker binds the job and task it runs with :func:`job_scope`.

Standard library only (the ``up`` supervisor imports logging too).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: the attributes :class:`ContextFilter` may set on a record, in this order
FIELDS = ("request_id", "job_id", "task_id", "user", "study", "trace_id")

#: an incoming X-Request-ID is kept only when it looks like an id (no log injection)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestInfo:
    """One HTTP request as logs see it. ``scope`` is the ASGI scope: once routing has
    matched, its ``path_params`` name the job and study the request is about."""

    __slots__ = ("request_id", "scope", "user")

    def __init__(self, request_id: str, scope: MutableMapping[str, Any] | None = None) -> None:
        self.request_id = request_id
        self.scope = scope
        self.user: str | None = None

    def path_param(self, name: str) -> str | None:
        params = self.scope.get("path_params") if self.scope is not None else None
        value = params.get(name) if params else None
        return str(value) if value is not None else None


_request: ContextVar[RequestInfo | None] = ContextVar("pixelmill_request", default=None)
_job: ContextVar[tuple[str, int | None] | None] = ContextVar("pixelmill_job", default=None)
#: the open span (an OpenTelemetry ``Span``) when tracing is on: the tracing module sets it,
#: the parent of the next span and the trace id of log lines
current_span: ContextVar[Any] = ContextVar("pixelmill_span", default=None)


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a plain id, else a new one."""
    if header and _REQUEST_ID.match(header):
        return header
    return os.urandom(16).hex()  # 32 hex digits as uuid4().hex, a seventh of its CPU


def begin_request(info: RequestInfo) -> Any:
    """Make ``info`` the current request; returns the token for :func:`end_request`."""
    return _request.set(info)


def end_request(token: Any) -> None:
    _request.reset(token)


def current_request() -> RequestInfo | None:
    return _request.get()


def set_user(name: str | None) -> None:
    """Name the caller of the current request (authentication calls it)."""
    info = _request.get()
    if info is not None:
        info.user = name


@contextmanager
def job_scope(job_id: str, task_id: int | None = None) -> Iterator[None]:
    """Log lines inside carry ``job_id`` (and ``task_id``)."""
    token = _job.set((job_id, task_id))
    try:
        yield
    finally:
        _job.reset(token)


def trace_id() -> str | None:
    """The current trace id (32 hex digits), when tracing is on and a span is open."""
    span = current_span.get()
    if span is None:
        return None
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


def current() -> dict[str, str]:
    """The context fields that apply right now (absent ones left out)."""
    found: dict[str, str] = {}
    info = _request.get()
    job = _job.get()
    if info is not None:
        found["request_id"] = info.request_id
    job_id = job[0] if job is not None else (info.path_param("job_id") if info else None)
    if job_id is not None:
        found["job_id"] = job_id
    if job is not None and job[1] is not None:
        found["task_id"] = str(job[1])
    if info is not None:
        if info.user is not None:
            found["user"] = info.user
        study = info.path_param("study_id")
        if study is not None:
            found["study"] = study
    tid = trace_id()
    if tid is not None:
        found["trace_id"] = tid
    return found


class ContextFilter(logging.Filter):
    """Stamps :func:`current` on each record as attributes (and ``record.context``, the
    dict of those present), so formatters can show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current()
        record.context = fields
        for name in FIELDS:
            setattr(record, name, fields.get(name))
        return True


# -- secrets never reach a log line --------------------------------------------------------
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys (pm_<id>_<secret>) wherever they appear
    (re.compile(r"pm_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}"), "pm_***"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1***"),
    # query parameters and form fields: URL signatures, tokens, passwords
    (
        re.compile(
            r"(?i)([?&;](?:sig|signature|token|api_key|apikey|key|password|csrf[a-z_]*)=)"
            r"[^&\s\"'#]+"
        ),
        r"\1***",
    ),
    # key: value / key=value / "key": "value" of secret-named fields and headers
    (
        re.compile(
            r"(?i)(['\"]?\b(?:password|new_password|old_password|secret|api_key|token|"
            r"csrf_token|x-csrf-token|authorization|cookie|set-cookie|pm_session)['\"]?"
            r"\s*[:=]\s*(?:b?['\"])?)[^'\",\s}&]+"
        ),
        r"\1***",
    ),
)


def redact(text: str) -> str:
    """``text`` with API keys, bearer tokens, passwords, cookies, CSRF tokens and URL
    signatures replaced by ``***``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


__all__ = [
    "FIELDS",
    "ContextFilter",
    "RequestInfo",
    "begin_request",
    "current",
    "current_request",
    "end_request",
    "job_scope",
    "redact",
    "request_id_from",
    "set_user",
    "trace_id",
]
