"""Renders of a real run, for a replayable trace: read from the gateway's access lines.

Renders leave no row in the database, but every request leaves an access line
(``observability.access_log``, logger ``pixelmill.access``): method, route template,
path, status and milliseconds, logged when the answer has been sent. A render route
(``/v1/images/{image_id}/render``, the deep-zoom tiles, the remote-source render and the
thumbor-compatible paths) answered 200 is a render that arrived at the line's time minus
its milliseconds and kept a server busy that long. The time includes any wait for a
render slot and result-cache hits, so a recording made at low load gives service times
(at high load it overstates them, as any response time would). Both log formats are
read: JSON (``log_format=json``) and text. Pure: the lines come in, rows go out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime

from pixelmill.observability.logging import ACCESS_LOGGER

__all__ = ["render_rows"]

#: a message written with ``observability.logging.ACCESS_FORMAT``: ``GET ROUTE PATH 200 12.3ms``
_ACCESS = re.compile(r"^(\S+) (\S+) (\S+) (\d{3}) (\d+(?:\.\d+)?)ms$")
#: a line of the text ``FORMAT``: ``2026-12-07 06:00:00,123 INFO LOGGER: MESSAGE [context]``
_TEXT = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ "
    + re.escape(ACCESS_LOGGER)
    + r": (.*?)(?: \[[^\]]*\])?$"
)


def _is_render_route(route: str) -> bool:
    """Whether a route template computes a rendering of an image."""
    return (
        route.endswith("/render")
        or "/dzi_files/" in route
        or route.startswith("/unsafe/")
        or route.startswith("/{signature:")
    )


def render_rows(lines: Iterable[str]) -> list[tuple[float, float]]:
    """``(arrived at, unix s; seconds in the server)`` of every GET of a render route
    answered 200 in ``lines``, oldest arrival first. Other lines are skipped."""
    rows = []
    for line in lines:
        parsed = _access(line.strip())
        if parsed is None:
            continue
        logged, message = parsed
        found = _ACCESS.match(message)
        if found is None:
            continue
        method, route, _, status, ms = found.groups()
        if method != "GET" or status != "200" or not _is_render_route(route):
            continue
        seconds = float(ms) / 1000
        rows.append((logged - seconds, seconds))
    rows.sort()
    return rows


def _access(line: str) -> tuple[float, str] | None:
    """The time (unix s) and message of an access line in either format, else None."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get("logger") != ACCESS_LOGGER:
            return None
        return datetime.fromisoformat(entry["time"]).timestamp(), str(entry["message"])
    found = _TEXT.match(line)
    if found is None:
        return None
    # logging's asctime is local time; the text format is for terminals, read it as such
    stamp = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp(), found.group(2)
