"""Time as the metadata stores hand it out: timezone-aware UTC, on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


def utc(value: T) -> T:
    """``value`` as an aware UTC datetime when it is a naive one; anything else as is.

    SQLite stores ``DateTime(timezone=True)`` columns without their zone and returns
    naive datetimes; every value we write is UTC, so the zone is put back here, once,
    and records read from SQLite compare equal to those read from PostgreSQL."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)
