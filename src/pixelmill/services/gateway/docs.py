"""The interactive API docs (``/docs``), served from this server: Swagger UI's files
come from the ``swagger-ui-bundle`` package, not a CDN, so the page loads nothing from
another origin and works offline. ReDoc is not served.

The page has one inline script (Swagger UI's start-up); the ``/docs`` answer's
Content-Security-Policy allows exactly that script by its SHA-256, and scripts from
this origin, nothing else. Every other answer gets :data:`STRICT_CSP`.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/docs"
STATIC_PATH = "/docs-static"

#: every answer but /docs: nothing may load but from this origin, no inline script or
#: style, no plugins, no framing, no <base> or form posts elsewhere (the UI is same-origin)
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_csp(html: str) -> str:
    """The policy of the docs page ``html``: scripts from this origin plus its inline
    scripts by hash; styles may be inline (Swagger UI sets them; styles run no code)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def install(app: FastAPI) -> str:
    """Mount Swagger UI's files and the ``/docs`` page on ``app`` (made with
    ``docs_url=None, redoc_url=None``); returns the page's Content-Security-Policy."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(STATIC_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - API docs",
        swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )
    body = bytes(page.body)

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(body)

    return docs_csp(body.decode())
