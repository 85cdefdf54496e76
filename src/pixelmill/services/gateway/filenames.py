"""The ``X-Filename`` header of uploads and imports, read as the client meant it.

HTTP header values are bytes; Starlette hands them over decoded as latin-1, so a raw
UTF-8 name (``café.png``, as curl and most HTTP libraries send it) would be stored as
mojibake (``cafÃ©.png``). The name is read as UTF-8 instead, in one of two forms:

* raw UTF-8 bytes: ``X-Filename: café.png``;
* an RFC 5987 extended value, for clients that can only send ASCII headers (browsers'
  ``fetch``): ``X-Filename: UTF-8''caf%C3%A9.png``.

Anything else (latin-1 or another legacy charset, a bad percent escape) is a 422 that
names the header: guessing a charset would store a wrong name for good.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from pixelmill.errors import InvalidParameter

#: RFC 5987 ``ext-value`` with the UTF-8 charset (the language tag, if any, is ignored)
_EXT_VALUE = re.compile(r"utf-8'[A-Za-z0-9-]*'(?P<value>.*)", re.IGNORECASE | re.DOTALL)


def filename_header(request: Request, name: str = "x-filename") -> str | None:
    """The header's value as text, or ``None`` when absent (or empty).

    Raises :class:`~pixelmill.errors.InvalidParameter` (422) when its bytes are not UTF-8.
    """
    value = request.headers.get(name)
    if not value:
        return None
    ext = _EXT_VALUE.fullmatch(value)
    raw = unquote_to_bytes(ext["value"]) if ext else value.encode("latin-1")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter(
            f"the {_title(name)} header is not UTF-8: send the name as UTF-8 bytes, "
            f"or percent-encoded as {_title(name)}: UTF-8''<name>",
            header=_title(name),
        ) from None
    return text or None


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
