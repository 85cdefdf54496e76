"""Serves the built web UI from this package's ``static/`` folder at ``/``.

* ``/assets/<hashed name>``: long-lived, immutable cache (the name changes with the content);
* other files of ``static/`` (``favicon.svg`` ...): revalidated every hour;
* any other path that is not the API's (``/v1/...``, ``/docs``, ``/metrics``, ``/healthz``
  ...): ``index.html`` with ``no-cache``, so deep links such as ``/studies/<id>`` open the
  app, which routes on the client.

Mounted last, after every API router, so it never shadows an API route; unknown API paths
stay ``404`` problems.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from pixelmill.errors import NotFound

STATIC = Path(__file__).with_name("static")
#: first path segments that belong to the API and the operations endpoints, never the UI
RESERVED = frozenset(
    {"v1", "docs", "docs-static", "redoc", "openapi.json", "metrics", "healthz", "readyz"}
)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=3600"


def built(root: Path = STATIC) -> bool:
    """True when ``npm run build`` has emitted the app into ``root``."""
    return (root / "index.html").is_file()


def resolve(path: str, root: Path = STATIC) -> tuple[Path, str] | None:
    """The file answering the UI path ``path`` and its Cache-Control, or ``None`` for
    a path the UI does not answer (API paths, missing assets, escapes from ``root``)."""
    first = path.split("/", 1)[0]
    if first in RESERVED or not built(root):
        return None
    if path and "." in path.rsplit("/", 1)[-1]:
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()) or not target.is_file():
            return None
        return target, IMMUTABLE if first == "assets" else REVALIDATE
    return root / "index.html", "no-cache"


class _PagesOnly(APIRoute):
    """A catch-all for ``GET``/``HEAD`` of non-API paths only: API paths keep their own
    ``404``/``405`` answers as if this route did not exist."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        if scope["path"].lstrip("/").split("/", 1)[0] in RESERVED:
            return Match.NONE, {}
        return super().matches(scope)


def install(app: FastAPI, root: Path = STATIC) -> None:
    """Adds the UI's catch-all route; call it after every API router is mounted."""

    def web_ui(request: Request, path: str) -> Response:
        found = resolve(path, root)
        if found is None:
            if not built(root):
                raise NotFound(
                    "the web UI is not built: run `make up` (or `npm ci && npm run build` in web/)"
                )
            raise NotFound(f"no file {request.url.path}")
        file, cache = found
        return FileResponse(file, headers={"Cache-Control": cache})

    app.router.routes.append(
        _PagesOnly("/{path:path}", web_ui, methods=["GET", "HEAD"], include_in_schema=False)
    )
