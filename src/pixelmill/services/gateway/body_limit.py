"""A cap on JSON request bodies, counted as the bytes arrive, and no NUL in them.

Without the cap a client can send a 400 MB JSON document to ``POST /v1/jobs`` and the
gateway parses all of it (1.4 GB of memory, measured). Uploads (images, datasets,
model files, image bytes to predict) stream to disk under ``server.max_upload_bytes``
and are not capped here; every other body is JSON, with or without its content type
(FastAPI parses a body without one as JSON).

A string with the NUL character (the JSON escape ``\u0000``; JSON cannot carry the raw
byte) is a ``422`` on every database: PostgreSQL's text columns cannot store it, and a
study name, thread title or display name with one answered 500 there (SQLite took it).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.errors import BodyTooLarge, InvalidParameter, PixelmillError
from pixelmill.services.gateway.problems import error_response

#: routes whose body is a file, not JSON (POST)
UPLOADS = re.compile(
    r"^/v1/(images|datasets|models/[^/]+/(versions|predict)|studies/[^/]+/imports|studies/import-archive)/?$"
)
#: JSON bodies with a cap of their own (workspace.annotation_import_max_bytes)
OWN_CAP = re.compile(r"^/v1/studies/[^/]+/images/[^/]+/annotations/import/?$")


#: the JSON escape of NUL, after a run of backslashes: odd, the run ends in the escape's
#: own backslash; even, the backslashes are escaped themselves and "u0000" is plain text
_NUL = re.compile(rb"(\\+)u0000")


def _nul(where: str) -> InvalidParameter:
    return InvalidParameter(f"{where} holds the NUL character (U+0000), which no field may hold")


def has_nul(text: bytes) -> bool:
    """Whether JSON ``text`` holds the escape of NUL in a string (``\\u0000``)."""
    return any(len(m.group(1)) % 2 for m in _NUL.finditer(text))


def _carry(text: bytes) -> bytes:
    """The end of ``text`` an escape of NUL may continue from: its last five bytes and
    the run of backslashes before them, so the next chunk's scan counts the run whole."""
    start = max(0, len(text) - 5)
    while start and text[start - 1] == 0x5C:  # a backslash
        start -= 1
    return text[start:]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        media, declared = b"", None
        for name, value in scope["headers"]:
            if name == b"content-type":
                media = value.split(b";", 1)[0].strip()
            elif name == b"content-length":
                declared = value
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await self._refuse(_nul("the URL"), scope, receive, send)
            return
        if not self._capped(media, scope["path"]):
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        # read whole (FastAPI reads it whole too), so a refusal is ours to answer: an
        # exception raised from inside the app's receive becomes FastAPI's own 400
        chunks: list[bytes] = []
        received, tail, more = 0, b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            received += len(chunk)
            if received > self.limit:
                await self._refuse(self._too_large(), scope, receive, send)
                return
            scanned = tail + chunk
            if has_nul(scanned):
                await self._refuse(_nul("text in the body"), scope, receive, send)
                return
            tail = _carry(scanned)
            chunks.append(chunk)
        body: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()  # after the body: the disconnect
            message, body = body, None
            return message

        await self.app(scope, replay, send)

    @staticmethod
    def _capped(media: bytes, path: str) -> bool:
        if OWN_CAP.match(path):
            return False
        if media == b"application/json" or media.endswith(b"+json"):
            return True
        return not media and not UPLOADS.match(path)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"the request body is over {self.limit} bytes", limit_bytes=self.limit)

    async def _refuse(
        self, error: PixelmillError, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = error_response(error, scope["method"], scope["path"])
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
