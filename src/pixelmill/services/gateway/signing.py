"""Signed render URLs: HMAC-SHA256 over the path and the query without ``sig``.

``sig`` is the URL-safe base64 (unpadded) digest of ``path + "?" + query`` where query is
the request's query string, in the order sent, with the ``sig`` parameter removed. So
every other parameter is covered, including:

* ``expires`` — Unix time (seconds) after which the URL is refused (403);
* ``kid`` — which of the configured keys signed it (``security.signing_keys``), so keys
  can be rotated: sign new URLs with a new id while URLs of the old one still work, then
  drop the old one. A URL without ``kid`` is checked with ``security.signing_key``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from pixelmill.errors import BadSignature


def _canonical(path: str, query: str) -> bytes:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "sig"]
    return f"{path}?{urlencode(pairs)}".encode()


def signature(key: str, path: str, query: str) -> str:
    digest = hmac.new(key.encode(), _canonical(path, query), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_url(key: str, url: str, *, expires: int | None = None, key_id: str | None = None) -> str:
    """Append ``sig`` (and ``expires``, ``kid`` when given) to a path-and-query (or a
    full URL) so the gateway accepts it."""
    extra = [("expires", str(expires))] if expires is not None else []
    extra += [("kid", key_id)] if key_id else []
    if extra:
        url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(extra)}"
    parts = urlsplit(url)
    sig = signature(key, parts.path, parts.query)
    return f"{url}{'&' if parts.query else '?'}sig={sig}"


def verify(
    key: str | None,
    path: str,
    query: str,
    *,
    keys: Mapping[str, str] | None = None,
    now: float | None = None,
) -> None:
    """Raise :class:`BadSignature` (403) unless the URL carries a valid, unexpired
    signature by ``key`` (no ``kid``) or by ``keys[kid]``."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    given = params.get("sig")
    if not given:
        raise BadSignature("this server only renders signed URLs: add a valid sig parameter")
    kid = params.get("kid")
    secret = (keys or {}).get(kid) if kid is not None else key
    if secret is None:
        raise BadSignature("the URL names a signing key this server does not have")
    # bytes: a non-ASCII sig is simply wrong, not an error of compare_digest
    if not hmac.compare_digest(given.encode(), signature(secret, path, query).encode()):
        raise BadSignature("the URL signature does not match")
    expires = params.get("expires")
    if expires is not None:
        if not expires.isdigit():
            raise BadSignature("expires is a Unix time in whole seconds")
        if int(expires) < (time.time() if now is None else now):
            raise BadSignature("this signed URL has expired")


def cache_control(
    audience: str, max_age: int, query: Mapping[str, str], *, now: float | None = None
) -> str:
    """``Cache-Control`` of an answer whose URL may carry ``expires``: such an answer is
    kept no longer than the URL works (and is not ``immutable``), else ``max_age``."""
    expires = query.get("expires")
    if expires is None or not expires.isdigit():
        return f"{audience}, max-age={max_age}, immutable"
    left = int(expires) - int(time.time() if now is None else now)
    return f"{audience}, max-age={max(0, min(max_age, left))}"
