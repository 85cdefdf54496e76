"""Logging of every pixelmill process, configured once from ``settings.observability``.

Lines are JSON objects (one per line, for log shippers) when stderr is not a terminal,
readable text on one (``observability.log_format`` forces either). Each carries the
context fields that apply (``request_id``, ``job_id``, ``task_id``, ``user``, ``study``,
``trace_id``, see :mod:`pixelmill.observability.context`), and every line passes
:func:`~pixelmill.observability.context.redact` on its way out, so API keys, passwords,
cookies, CSRF tokens and URL signatures never reach it.

The composition roots call :func:`configure_logging`: the CLI for each command, the ASGI
app factory for each server process. Nothing else sets levels or handlers, and nothing
reads the environment for them: the level arrives in the settings tree (server
processes of ``pixelmill up`` get the one ``up`` settled on through it).

Imports only the standard library, so the lean ``up`` supervisor may import it too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from pixelmill.observability.context import FIELDS, ContextFilter, redact

#: one line per record on stderr: when, how bad, which logger, what
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the gateway's line per request (``services.gateway.middleware``), read back by
#: ``pixelmill autoscale record --access-log`` (``autoscale.sim.record``)
ACCESS_LOGGER = "pixelmill.access"
#: its message: method, route template, path without its query, status, milliseconds
ACCESS_FORMAT = "%s %s %s %d %.1fms"


class LoggingSettings(Protocol):
    """What logging needs of :class:`pixelmill.settings.ObservabilitySettings`."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...

    @property
    def access_log(self) -> bool: ...


class TextFormatter(logging.Formatter):
    """:data:`FORMAT`, then ``[request_id=... user=...]`` when there is context."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, str] = getattr(record, "context", None) or {}
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update(getattr(record, "context", None) or {})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        # redacted before encoding: JSON escaping would hide quoted secrets from the patterns
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_formatter(log_format: str, stream: IO[str]) -> logging.Formatter:
    """The formatter of ``log_format`` ('auto': text on a terminal, JSON otherwise)."""
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        log_format = "text" if isatty is not None and isatty() else "json"
    return JsonFormatter() if log_format == "json" else TextFormatter()


#: marks the one handler configure_logging installs (so calling it again replaces it)
_OURS = "_pixelmill_handler"


def configure_logging(
    observability: LoggingSettings, *, verbose: bool | None = None, stream: IO[str] | None = None
) -> int:
    """Set the root logger's level from ``observability.log_level`` (a Python level name,
    any case) and log to ``stream`` (stderr) in ``observability.log_format``.

    ``verbose`` is the ``pixelmill up --verbose`` switch:

    * ``None`` (every other command, server processes): the configured level. Alembic's
      INFO lines (a plugin list and one line per applied revision) stay hidden below
      DEBUG: they are noise on every start, not news.
    * ``True``: at least INFO, Alembic's migration lines included.
    * ``False``: at most WARNING, so a start shows warnings and errors only.

    Returns the level in effect (a :mod:`logging` int) for handing on to child processes.
    Calling it again (a command after the CLI group) re-levels and replaces its handler.
    """
    level = logging.getLevelNamesMapping()[observability.log_level.upper()]
    if verbose is True:
        level = min(level, logging.INFO)
    elif verbose is False:
        level = max(level, logging.WARNING)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    # like logging.basicConfig: a host that set up logging itself (a test runner, an
    # application embedding pixelmill) keeps its handlers; only the level is ours then
    if stream is not None or len(ours) == len(root.handlers):
        for old in ours:
            root.removeHandler(old)
        out = stream or sys.stderr
        handler = logging.StreamHandler(out)
        setattr(handler, _OURS, True)
        handler.setFormatter(make_formatter(observability.log_format, out))
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    root.setLevel(level)
    show_alembic = verbose is True or level <= logging.DEBUG
    logging.getLogger("alembic").setLevel(logging.NOTSET if show_alembic else logging.WARNING)
    # access lines asked for (INFO) are shown at any level, a quiet `up` included
    access = logging.INFO if observability.access_log else logging.NOTSET
    logging.getLogger(ACCESS_LOGGER).setLevel(access)
    return level


__all__ = [
    "ACCESS_FORMAT",
    "ACCESS_LOGGER",
    "FIELDS",
    "FORMAT",
    "JsonFormatter",
    "LoggingSettings",
    "TextFormatter",
    "configure_logging",
    "make_formatter",
]
