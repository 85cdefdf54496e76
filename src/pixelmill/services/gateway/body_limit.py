"""A cap on JSON request bodies, counted as the bytes arrive.

Without it a client can send a 400 MB JSON document to ``POST /v1/jobs`` and the
gateway parses all of it (1.4 GB of memory, measured). Uploads (images, datasets,
model files, image bytes to predict) stream to disk under ``server.max_upload_bytes``
and are not capped here; every other body is JSON, with or without its content type
(FastAPI parses a body without one as JSON).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.errors import BodyTooLarge
from pixelmill.services.gateway.problems import error_response

#: routes whose body is a file, not JSON (POST)
UPLOADS = re.compile(
    r"^/v1/(images|datasets|models/[^/]+/(versions|predict)|studies/[^/]+/imports|studies/import-archive)/?$"
)
#: JSON bodies with a cap of their own (workspace.annotation_import_max_bytes)
OWN_CAP = re.compile(r"^/v1/studies/[^/]+/images/[^/]+/annotations/import/?$")


class _TooLarge(Exception):
    pass


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
        if not self._capped(media, scope["path"]):
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:  # an answer is on its way already: nothing better to do
                raise
            await self._refuse(scope, receive, send)

    @staticmethod
    def _capped(media: bytes, path: str) -> bool:
        if OWN_CAP.match(path):
            return False
        if media == b"application/json" or media.endswith(b"+json"):
            return True
        return not media and not UPLOADS.match(path)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(f"the request body is over {self.limit} bytes", limit_bytes=self.limit)
        response = error_response(error, scope["method"], scope["path"])
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
