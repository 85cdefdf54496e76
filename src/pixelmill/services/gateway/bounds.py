"""Upper bounds of integers taken from requests, set by the columns they are compared
with: a number a column cannot hold is a 422 at the edge, never a driver overflow (500)
deep inside (``GET /v1/jobs/0/tasks/<40 digits>/results/0`` used to answer 500)."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

#: an INTEGER column on PostgreSQL (int4): task indexes, model and annotation versions
INT32_MAX = 2**31 - 1
#: a BIGINT column (event ids) and SQLite's INTEGER
INT64_MAX = 2**63 - 1


def event_cursor(last_event_id: str | None, default: int) -> int:
    """The event id of a ``Last-Event-ID`` header: ASCII digits that fit an event id
    (``"²".isdigit()`` is true, and ``int("²")`` raises), else ``default``."""
    text = (last_event_id or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= INT64_MAX:
        return int(text)
    return default


#: a name or title a person reads in a list: the spaces around it dropped, and not blank
#: (a study named "   " showed as a link without text and a card without a title)
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
