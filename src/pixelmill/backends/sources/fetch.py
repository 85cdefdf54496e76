"""Fetch a remote source's bytes within its limits.

``http(s)://``: the host is resolved once, every address is checked
(:func:`~pixelmill.backends.sources.guard.check_addresses`), and the connection goes to
those addresses only (the URL carries the IP, the ``Host`` header and TLS SNI the name,
so the certificate is still checked against the name). Redirects are not followed by
the client: each ``Location`` is parsed and checked like a new URL. No proxy settings
are read from the environment. The body is streamed and stops at ``max_bytes``.
``timeout_s`` is one deadline over the whole fetch, redirects included: every connect,
write and read of the connection gets only the time left
(:mod:`~pixelmill.backends.sources.deadline`), so a source trickling its headers or body
is cut at the limit.

``s3://BUCKET/KEY``: read with the storage section's S3 endpoint and credentials, from
allowed buckets only, never creating anything, under the same one deadline: botocore
connects within ``timeout_s`` (the fetch's first step) and reads the answer with the
time left as its read timeout (a per-request override, set by a ``before-call`` hook);
the body is read in chunks, the deadline checked after each, and at the deadline a
watchdog shuts the connection's socket, so a read waiting on a slow server returns then
and the fetch ends with the http path's :class:`SourceTimeout`.

Errors are pixelmill's: :class:`SourceRefused` (403), :class:`NotFound` (the source
answered 404/410 or has no such key), :class:`ImageTooLarge` (413),
:class:`SourceUnavailable` (502) and :class:`SourceTimeout` (504).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx

from pixelmill.backends.sources.deadline import DeadlineTransport, fetch_deadline, time_left
from pixelmill.backends.sources.guard import Source, SourcePolicy, check_addresses, parse_source
from pixelmill.errors import (
    ImageTooLarge,
    NotFound,
    SourceTimeout,
    SourceUnavailable,
)

#: ``(host, port) -> addresses``: the DNS answer, asked once per fetch
Resolver = Callable[[str, int], list[str]]

_CHUNK = 64 * 1024


class FetchLimits(SourcePolicy, Protocol):
    """What a fetch reads of :class:`pixelmill.settings.SourcesSettings`."""

    @property
    def max_bytes(self) -> int: ...

    @property
    def timeout_s(self) -> float: ...

    @property
    def max_redirects(self) -> int: ...


@dataclass(frozen=True)
class S3Access:
    """Where ``s3://`` sources are read (the storage section's S3 settings)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class SourceFetcher:
    """Fetches sources by URL under ``limits`` (thread-safe)."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        s3: S3Access | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self.limits = limits
        self._s3_access = s3 or S3Access()
        self._resolve = resolver
        self._client = httpx.Client(
            follow_redirects=False, trust_env=False, transport=DeadlineTransport()
        )
        self._s3_client: Any = None
        self._s3_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()
        with self._s3_lock:
            if self._s3_client is not None:
                self._s3_client.close()

    def fetch(self, url: str) -> bytes:
        """The bytes at ``url`` (following at most ``max_redirects`` checked redirects)."""
        deadline = time.monotonic() + self.limits.timeout_s
        for _ in range(self.limits.max_redirects + 1):
            source = parse_source(url, self.limits)
            if source.scheme == "s3":
                return self._s3(source, deadline)
            with fetch_deadline(deadline):
                answer = self._http(source, deadline)
            if isinstance(answer, bytes):
                return answer
            url = urljoin(url, answer)
        raise SourceUnavailable(
            f"the source redirected more than {self.limits.max_redirects} times"
        )

    # -- http(s) -------------------------------------------------------------------------

    def _http(self, source: Source, deadline: float) -> bytes | str:
        addresses = self._resolve(source.host, source.port)
        check_addresses(source.host, addresses, self.limits.allowed_networks)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._get(source, address, deadline)
            except httpx.ConnectError as exc:  # the next address may answer
                failure = exc
            except httpx.TimeoutException as exc:
                raise _late(self.limits.timeout_s) from exc
            except httpx.HTTPError as exc:
                raise SourceUnavailable("the connection to the source failed") from exc
            except httpx.InvalidURL as exc:  # e.g. "Location: http:host/", parsed in send
                raise SourceUnavailable("the source answered a malformed URL") from exc
        raise SourceUnavailable(f"could not connect to {source.host!r}") from failure

    def _get(self, source: Source, address: str, deadline: float) -> bytes | str:
        literal = f"[{address}]" if ":" in address else address
        default = source.port == (443 if source.scheme == "https" else 80)
        host = source.host if default else f"{source.host}:{source.port}"
        request = self._client.build_request(
            "GET",
            f"{source.scheme}://{literal}:{source.port}{source.target}",
            headers={"Host": host, "Accept": "image/*,*/*;q=0.5", "User-Agent": "pixelmill"},
            timeout=httpx.Timeout(_left(deadline, self.limits.timeout_s)),
            extensions={"sni_hostname": source.host},
        )
        response = self._client.send(request, stream=True)
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise SourceUnavailable("the source redirected without a location")
                return location
            _check_status(response.status_code)
            return _read(response.iter_bytes(), response.headers, self.limits, deadline)
        finally:
            response.close()

    # -- s3 ------------------------------------------------------------------------------

    def _s3(self, source: Source, deadline: float) -> bytes:
        """The object's bytes, read by ``deadline`` (see the module's docstring)."""
        answer = self._get_object(source, deadline)
        body = answer["Body"]
        watchdog = _Watchdog(body, deadline)
        try:
            headers = {"content-length": str(answer.get("ContentLength", ""))}
            chunks = _s3_chunks(body, watchdog, self.limits, deadline)
            return _read(chunks, headers, self.limits, deadline)
        finally:
            watchdog.cancel()
            body.close()

    def _get_object(self, source: Source, deadline: float) -> Any:
        """GET the object's headers, reading them with the time left (``_read_timeout``)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )

        client = self._bucket_client()
        try:
            with fetch_deadline(deadline):
                _left(deadline, self.limits.timeout_s)
                return client.get_object(Bucket=source.host, Key=source.target)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NotFound", "404"):
                raise NotFound(f"no object {source.target!r} in bucket {source.host!r}") from exc
            raise SourceUnavailable(f"the bucket answered {code or 'an error'}") from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise _late(self.limits.timeout_s) from exc
        except BotoCoreError as exc:
            raise SourceUnavailable("the S3 source could not be reached") from exc

    def _bucket_client(self) -> Any:
        with self._s3_lock:
            if self._s3_client is None:
                from botocore.config import Config

                from pixelmill.backends.storage.s3 import make_client

                access = self._s3_access
                self._s3_client = make_client(
                    endpoint_url=access.endpoint_url,
                    aws_access_key_id=access.access_key,
                    aws_secret_access_key=access.secret_key,
                    config=Config(
                        region_name=access.region,
                        signature_version="s3v4",
                        connect_timeout=self.limits.timeout_s,
                        read_timeout=self.limits.timeout_s,
                        retries={"max_attempts": 1},
                        s3={"addressing_style": "path" if access.endpoint_url else "auto"},
                    ),
                )
                self._s3_client.meta.events.register("before-call.s3.GetObject", _read_timeout)
            return self._s3_client


def _read_timeout(context: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-call`` hook: the request's read timeout (botocore's
    per-request override of the client's) is the time left before the fetch's deadline."""
    left = time_left()
    if left is not None:
        context["read_timeout"] = max(left, 0.001)


class _Watchdog:
    """Shuts the socket under an S3 object's ``body`` at ``deadline``: a read waiting on
    a slow server then returns what it has (or fails) at once. ``fired`` says it did."""

    def __init__(self, body: Any, deadline: float) -> None:
        self.fired = False
        self._body = body
        self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        # botocore's StreamingBody wraps urllib3's response, whose shutdown() (urllib3
        # >= 2.3) is the one way to end a read blocked in another thread
        shutdown = getattr(getattr(self._body, "_raw_stream", None), "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(Exception):  # already read to the end, or closed
                shutdown()

    def cancel(self) -> None:
        self._timer.cancel()


def _s3_chunks(
    body: Any, watchdog: _Watchdog, limits: FetchLimits, deadline: float
) -> Iterator[bytes]:
    """The object's body in chunks; past the deadline (the watchdog broke a read off), the
    fetch's :class:`SourceTimeout`."""
    from botocore.exceptions import BotoCoreError

    while True:
        try:
            chunk = body.read(_CHUNK)
        except (BotoCoreError, OSError) as exc:
            if watchdog.fired or time.monotonic() >= deadline:
                raise _late(limits.timeout_s) from exc
            raise SourceUnavailable("the S3 source broke off the object") from exc
        if watchdog.fired:  # the deadline passed during this read
            raise _late(limits.timeout_s)
        if not chunk:
            return
        yield chunk


def _check_status(status: int) -> None:
    if status in (404, 410):
        raise NotFound(f"the source answered {status}")
    if status != 200:
        raise SourceUnavailable(f"the source answered {status}", source_status=status)


def _read(chunks: Iterable[bytes], headers: Any, limits: FetchLimits, deadline: float) -> bytes:
    """The body from ``chunks``, refused as soon as it is over ``max_bytes`` (declared or
    counted) or late."""
    declared = str(headers.get("content-length") or "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(limits.max_bytes)
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limits.max_bytes:
            raise _too_large(limits.max_bytes)
        if time.monotonic() > deadline:
            raise _late(limits.timeout_s)
    if not body:
        raise SourceUnavailable("the source answered with no content")
    return bytes(body)


def _too_large(limit: int) -> ImageTooLarge:
    return ImageTooLarge(f"the source is larger than {limit} bytes", max_bytes=limit)


def _left(deadline: float, limit: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _late(limit)
    return left


def _late(limit: float) -> SourceTimeout:
    """The error of a fetch past its deadline (every path: http(s), s3)."""
    return SourceTimeout(f"the source took longer than {limit:g} s")
