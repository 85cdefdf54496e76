"""Logging of every pixelmill process, configured once from ``settings.observability``.

The composition roots call :func:`configure_logging`: the CLI for each command, the ASGI
app factory for each server process. Nothing else sets levels or handlers, and nothing
reads the environment for them: the level arrives in the settings tree (server
processes of ``pixelmill up`` get the one ``up`` settled on through it).

Imports only the standard library, so the lean ``up`` supervisor may import it too.
"""

from __future__ import annotations

import logging
from typing import Protocol

#: one line per record on stderr: when, how bad, which logger, what
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LoggingSettings(Protocol):
    """What logging needs of :class:`pixelmill.settings.ObservabilitySettings`."""

    @property
    def log_level(self) -> str: ...


def configure_logging(observability: LoggingSettings, *, verbose: bool | None = None) -> int:
    """Set the root logger's level from ``observability.log_level`` (a Python level name,
    any case) and log to stderr in :data:`FORMAT`.

    ``verbose`` is the ``pixelmill up --verbose`` switch:

    * ``None`` (every other command, server processes): the configured level. Alembic's
      INFO lines (a plugin list and one line per applied revision) stay hidden below
      DEBUG: they are noise on every start, not news.
    * ``True``: at least INFO, Alembic's migration lines included.
    * ``False``: at most WARNING, so a start shows warnings and errors only.

    Returns the level in effect (a :mod:`logging` int) for handing on to child processes.
    Calling it again (a command after the CLI group) re-levels; handlers are added once.
    """
    level = logging.getLevelNamesMapping()[observability.log_level.upper()]
    if verbose is True:
        level = min(level, logging.INFO)
    elif verbose is False:
        level = max(level, logging.WARNING)
    logging.basicConfig(format=FORMAT)  # no-op when the root logger has handlers already
    logging.getLogger().setLevel(level)
    show_alembic = verbose is True or level <= logging.DEBUG
    logging.getLogger("alembic").setLevel(logging.NOTSET if show_alembic else logging.WARNING)
    return level


__all__ = ["FORMAT", "LoggingSettings", "configure_logging"]
