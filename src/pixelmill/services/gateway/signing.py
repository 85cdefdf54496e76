"""Signed render URLs: HMAC-SHA256 over the path and the query without ``sig``.

``sig`` is the URL-safe base64 (unpadded) digest of ``path + "?" + query`` where query is
the request's query string, in the order sent, with the ``sig`` parameter removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit

from pixelmill.errors import BadSignature


def _canonical(path: str, query: str) -> bytes:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "sig"]
    return f"{path}?{urlencode(pairs)}".encode()


def signature(key: str, path: str, query: str) -> str:
    digest = hmac.new(key.encode(), _canonical(path, query), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_url(key: str, url: str) -> str:
    """Append ``sig`` to a path-and-query (or full URL) so the gateway accepts it."""
    parts = urlsplit(url)
    sig = signature(key, parts.path, parts.query)
    joiner = "&" if parts.query else ""
    return f"{url}{'?' if not parts.query else ''}{joiner}sig={sig}"


def verify(key: str, path: str, query: str) -> None:
    given = dict(parse_qsl(query, keep_blank_values=True)).get("sig")
    if not given:
        raise BadSignature("this server only renders signed URLs: add a valid sig parameter")
    if not hmac.compare_digest(given, signature(key, path, query)):
        raise BadSignature("the URL signature does not match")
