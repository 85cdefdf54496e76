"""Rendering images fetched by URL (remote sources), against a real HTTP server on
loopback and a real S3 server (SeaweedFS): what is allowed renders, and every way of
reaching what is not allowed (loopback, cloud metadata, a redirect inside the network,
a huge or slow answer) is refused with a clear problem."""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import pyvips
from fastapi.testclient import TestClient
from libthumbor import CryptoURL

from pixelmill.backends.sources.fetch import S3Access, SourceFetcher
from pixelmill.errors import SourceTimeout
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.signing import sign_url
from pixelmill.settings import SourcesSettings, StorageSettings
from tests.chaos import Trickle, tcp_proxy
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

PHOTO = make_image(640, 480)
SIGNING_KEY = "remote-sources-test-key"
THUMBOR_KEY = "remote-sources-thumbor-key"


class _Origin(BaseHTTPRequestHandler):
    """An image server: the paths below, each counted as it is asked for."""

    hits: Counter[str] = Counter()
    hosts: list[str] = []

    def do_GET(self) -> None:
        _Origin.hits[self.path] += 1
        _Origin.hosts.append(self.headers.get("Host", ""))
        port = self.server.server_address[1]
        routes: dict[str, Any] = {
            "/photo.jpg": lambda: self._send(200, PHOTO, "image/jpeg"),
            "/moved.jpg": lambda: self._redirect(f"http://localhost:{port}/photo.jpg"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-elsewhere": lambda: self._redirect(f"http://127.0.0.1:{port}/photo.jpg"),
            "/loop": lambda: self._redirect("/loop"),
            "/missing.jpg": lambda: self._send(404, b"no", "text/plain"),
            "/broken": lambda: self._send(500, b"oops", "text/plain"),
            "/bad-gateway": lambda: self._send(502, b"upstream down", "text/plain"),
            "/gateway-timeout": lambda: self._send(504, b"upstream slow", "text/plain"),
            "/notes.txt": lambda: self._send(200, b"just some text", "text/plain"),
            "/huge.jpg": lambda: self._send(200, PHOTO + b"\0" * 300_000, "image/jpeg"),
            "/huge-undeclared": self._undeclared,
            "/slow.jpg": self._slow,
            "/trickle.jpg": lambda: self._trickle(headers_first=True),
            "/trickle-headers.jpg": lambda: self._trickle(headers_first=False),
            "/bomb.png": lambda: self._send(200, _bomb(), "image/png"),
            "/truncated.jpg": lambda: self._send(200, PHOTO[: len(PHOTO) // 2], "image/jpeg"),
        }
        routes.get(self.path, lambda: self._send(404, b"", "text/plain"))()

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _undeclared(self) -> None:  # no Content-Length: counted as it streams
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(40):
                self.wfile.write(b"\xff" * 65536)
        except OSError:
            pass  # the fetcher hung up at its limit
        self.close_connection = True

    def _slow(self) -> None:
        time.sleep(1.5)
        self._send(200, PHOTO, "image/jpeg")

    def _trickle(self, *, headers_first: bool) -> None:
        """The photo one byte at a time, 0.1 s apart, for at most 20 s: its headers at once
        and then the body, or even the headers byte by byte."""
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(PHOTO)}\r\nConnection: close\r\n\r\n"
        ).encode()
        if headers_first:
            self.wfile.write(head)
            trickled = PHOTO
        else:
            trickled = head + PHOTO
        stop = time.monotonic() + 20
        try:
            for byte in trickled:
                if time.monotonic() > stop:
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the fetcher hung up at its deadline
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _bomb() -> bytes:
    """A PNG whose header claims 100000 x 100000 pixels (never decoded: refused first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _client(tmp_path: Path, sources: dict[str, Any], **more: Any) -> tuple[TestClient, Any]:
    settings = make_settings(
        tmp_path,
        sources={"enabled": True, "timeout_s": 0.5, "max_bytes": 200_000, **sources},
        security={"signing_key": SIGNING_KEY, "thumbor_key": THUMBOR_KEY},
        render={"max_pixels": 50_000_000},
        **more,
    )
    container = build_container(settings)
    return TestClient(create_app(container), raise_server_exceptions=False), container


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, origin: int
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A gateway allowed to fetch from the origin on loopback (an on-premises server)."""
    allowed = {
        "allowed_hosts": [f"localhost:{origin}"],
        "allowed_networks": ["127.0.0.1/32", "::1/128"],
    }
    client, container = _client(tmp_path_factory.mktemp("remote"), allowed)
    _, key = make_key(container, "reader", role="read")
    with client:
        yield client, {"Authorization": f"Bearer {key}"}
    container.close()


def _render(client: TestClient, url: str, headers: dict[str, str], extra: str = "w=120") -> Any:
    return client.get(f"/v1/sources/render?url={quote(url, safe='')}&{extra}", headers=headers)


def test_an_allowed_source_renders_and_is_fetched_once_for_many_sizes(
    gateway: tuple[TestClient, dict[str, str]], origin: int
) -> None:
    client, auth = gateway
    url = f"http://localhost:{origin}/photo.jpg"
    before = _Origin.hits["/photo.jpg"]
    small = _render(client, url, auth, "w=120&format=png")
    assert small.status_code == 200, small.text
    image = pyvips.Image.new_from_buffer(small.content, "")
    assert (image.width, image.height) == (120, 90)
    assert small.headers["cache-control"].startswith("private")
    # another size and format of the same source: rendered from the fetched copy
    large = _render(client, url, auth, "w=300&format=webp")
    assert large.status_code == 200 and large.headers["content-type"] == "image/webp"
    again = _render(client, url, auth, "w=120&format=png")
    assert again.headers["x-cache"] == "HIT" and again.content == small.content
    assert _Origin.hits["/photo.jpg"] - before == 1
    # the origin saw the host name it was asked for, not an address
    assert _Origin.hosts[-1] == f"localhost:{origin}"


def test_redirects_are_followed_only_where_a_url_could_go_itself(
    gateway: tuple[TestClient, dict[str, str]], origin: int
) -> None:
    client, auth = gateway
    base = f"http://localhost:{origin}"
    assert _render(client, f"{base}/moved.jpg", auth).status_code == 200
    for path in ("/to-metadata", "/to-elsewhere"):
        refused = _render(client, f"{base}{path}", auth)
        assert refused.status_code == 403, path
        assert refused.json()["type"].endswith("/source-refused")
    looped = _render(client, f"{base}/loop", auth)
    assert looped.status_code == 502 and "redirected more than" in looped.json()["detail"]


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/missing.jpg", 404, "not-found"),
        ("/broken", 502, "source-unavailable"),
        ("/notes.txt", 415, "unsupported-format"),
        ("/huge.jpg", 413, "too-large"),
        ("/huge-undeclared", 413, "too-large"),
        ("/slow.jpg", 504, "source-timeout"),
        ("/bomb.png", 413, "too-large"),
        ("/truncated.jpg", 422, "corrupt-image"),  # as the same bytes uploaded are
    ],
)
def test_a_bad_source_is_a_clear_problem_and_the_gateway_keeps_serving(
    gateway: tuple[TestClient, dict[str, str]], origin: int, path: str, status: int, kind: str
) -> None:
    client, auth = gateway
    answer = _render(client, f"http://localhost:{origin}{path}", auth)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/" + kind)
    assert "Traceback" not in answer.text and "httpx" not in answer.text
    assert _render(client, f"http://localhost:{origin}/photo.jpg", auth).status_code == 200


@pytest.mark.parametrize("path", ["/trickle.jpg", "/trickle-headers.jpg"])
def test_a_trickling_source_is_cut_at_the_timeout_of_the_whole_fetch(
    gateway: tuple[TestClient, dict[str, str]], origin: int, path: str
) -> None:
    # every read brings a byte well within the timeout (0.5 s), but the source would
    # take 20 s in all: the fetch ends at its deadline, not when the source is done
    # (without a deadline on the whole fetch no read would time out, and the source
    # would end by closing a short body: a 504 "took longer" is the deadline's answer)
    client, auth = gateway
    answer = _render(client, f"http://localhost:{origin}{path}", auth)
    assert answer.status_code == 504, answer.text
    assert answer.json()["type"].endswith("/source-timeout")
    assert "longer than 0.5 s" in answer.json()["detail"]
    assert _render(client, f"http://localhost:{origin}/photo.jpg", auth).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        ("/bad-gateway", 502, "the source answered 502"),
        ("/gateway-timeout", 502, "the source answered 504"),
        ("/slow.jpg", 504, "the source took longer than 0.5 s"),
    ],
)
def test_a_failing_origin_is_logged_as_a_warning_not_as_our_error(
    gateway: tuple[TestClient, dict[str, str]],
    origin: int,
    caplog: pytest.LogCaptureFixture,
    path: str,
    status: int,
    said: str,
) -> None:
    # a third party's outage is answered 5xx, but it is not pixelmill's error: the log
    # line says what the source did, as a warning, so no error alert fires for it
    client, auth = gateway
    caplog.set_level(logging.INFO)
    answer = _render(client, f"http://localhost:{origin}{path}", auth)
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith(
        "/source-" + ("timeout" if status == 504 else "unavailable")
    )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    request = answer.headers["x-request-id"]
    lines = [r for r in caplog.records if f"[request {request}]" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert said in lines[0].getMessage()


def test_by_default_nothing_inside_the_network_is_fetched(tmp_path: Path, origin: int) -> None:
    # the host is allowed by name, but it resolves to loopback: refused before connecting
    client, container = _client(tmp_path, {"allowed_hosts": [f"localhost:{origin}"]})
    _, key = make_key(container, "reader", role="read")
    auth = {"Authorization": f"Bearer {key}"}
    before = sum(_Origin.hits.values())
    with client:
        for url in (
            f"http://localhost:{origin}/photo.jpg",
            f"http://127.0.0.1:{origin}/photo.jpg",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
        ):
            answer = _render(client, url, auth)
            assert answer.status_code == 403, (url, answer.text)
            assert answer.json()["type"].endswith("/source-refused")
    container.close()
    assert sum(_Origin.hits.values()) == before  # not one connection reached the origin


def test_sources_are_off_unless_enabled_and_need_a_caller_or_a_signature(
    tmp_path: Path, origin: int, gateway: tuple[TestClient, dict[str, str]]
) -> None:
    client, _auth = gateway
    url = f"http://localhost:{origin}/photo.jpg"
    path = f"/v1/sources/render?url={quote(url, safe='')}&w=100"
    assert client.get(path).status_code == 401  # anonymous, unsigned
    signed = client.get(sign_url(SIGNING_KEY, path))
    assert signed.status_code == 200, signed.text
    assert signed.headers["cache-control"].startswith("public")
    tampered = sign_url(SIGNING_KEY, path).replace("w=100", "w=101")
    assert client.get(tampered).status_code == 403
    off_settings = make_settings(tmp_path / "off", security={"signing_key": SIGNING_KEY})
    off = TestClient(create_app(c := build_container(off_settings)))
    with off:
        assert off.get(sign_url(SIGNING_KEY, path)).status_code == 404
    c.close()


def test_a_thumbor_user_renders_a_remote_source_by_its_url(
    gateway: tuple[TestClient, dict[str, str]], origin: int
) -> None:
    # the URL libthumbor signs for a remote image, with pixelmill's host instead of thumbor's
    client, _auth = gateway
    source = f"http://localhost:{origin}/photo.jpg"
    url = CryptoURL(key=THUMBOR_KEY).generate(width=160, height=0, smart=False, image_url=source)
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    assert pyvips.Image.new_from_buffer(answer.content, "").width == 160
    assert answer.headers["cache-control"].startswith("public")
    # a signed URL still cannot leave the allow-lists
    inside = CryptoURL(key=THUMBOR_KEY).generate(
        width=160, image_url="http://169.254.169.254/latest/meta-data/"
    )
    assert client.get(inside).status_code == 403


def test_the_connection_goes_to_the_address_that_was_checked(origin: int) -> None:
    # a name no DNS knows, answered by the resolver this fetch is given: the request
    # reaches that address, naming the host in its Host header
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1"]

    limits = SourcesSettings(
        enabled=True,
        allowed_hosts=[f"images.invalid:{origin}"],
        allowed_networks=["127.0.0.1/32"],
    )
    fetcher = SourceFetcher(limits, resolver=resolver)
    try:
        assert fetcher.fetch(f"http://images.invalid:{origin}/photo.jpg") == PHOTO
    finally:
        fetcher.close()
    assert asked == [("images.invalid", origin)]
    assert _Origin.hosts[-1] == f"images.invalid:{origin}"


def _new_bucket(s3_settings: StorageSettings) -> tuple[Any, str]:
    """A boto3 client of the test's S3 server and a new bucket on it, named for the test."""
    import boto3

    bucket = f"pm-src-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_settings.s3_endpoint_url,
        aws_access_key_id=s3_settings.s3_access_key,
        aws_secret_access_key=s3_settings.s3_secret_key,
        region_name=s3_settings.s3_region,
    )
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


@pytest.mark.server
def test_s3_sources_render_from_allowed_buckets_only(
    tmp_path: Path, s3_settings: StorageSettings
) -> None:
    s3, bucket = _new_bucket(s3_settings)
    s3.put_object(Bucket=bucket, Key="cases/one photo.jpg", Body=PHOTO)
    client, container = _client(tmp_path, {"allowed_buckets": [bucket]}, storage=s3_settings)
    _, key = make_key(container, "reader", role="read")
    auth = {"Authorization": f"Bearer {key}"}
    with client:
        ok = _render(client, f"s3://{bucket}/cases/one%20photo.jpg", auth, "w=64&format=png")
        assert ok.status_code == 200, ok.text
        assert pyvips.Image.new_from_buffer(ok.content, "").width == 64
        assert _render(client, f"s3://{bucket}/cases/none.jpg", auth).status_code == 404
        other = _render(client, "s3://some-other-bucket/cases/one%20photo.jpg", auth)
        assert other.status_code == 403
    container.close()
    s3.delete_object(Bucket=bucket, Key="cases/one photo.jpg")
    s3.delete_bucket(Bucket=bucket)


@pytest.mark.server
def test_a_trickling_s3_source_is_cut_at_the_timeout_of_the_whole_fetch(
    s3_settings: StorageSettings,
) -> None:
    # given an object whose body the S3 server sends through a proxy that trickles it
    # (its headers at once, then 256 bytes every 0.05 s: about 9 s for 48 kB)
    s3, bucket = _new_bucket(s3_settings)
    blob = os.urandom(48_000)
    s3.put_object(Bucket=bucket, Key="slow.jpg", Body=blob)
    server = urlsplit(s3_settings.s3_endpoint_url or "")
    limits = SourcesSettings(enabled=True, allowed_buckets=[bucket], timeout_s=1.0)
    try:
        with tcp_proxy(server.hostname or "", server.port or 0, Trickle(256, 0.05)) as proxy:
            access = S3Access(
                endpoint_url=f"http://127.0.0.1:{proxy.port}",
                region=s3_settings.s3_region,
                access_key=s3_settings.s3_access_key,
                secret_key=s3_settings.s3_secret_key,
            )
            fetcher = SourceFetcher(limits, s3=access)
            # when it is fetched with a 1 s limit
            with pytest.raises(SourceTimeout, match=r"the source took longer than 1 s"):
                fetcher.fetch(f"s3://{bucket}/slow.jpg")
            sent = proxy.trickled
            fetcher.close()
    finally:
        s3.delete_object(Bucket=bucket, Key="slow.jpg")
        s3.delete_bucket(Bucket=bucket)
    # then the fetch ended at its deadline, with the http path's error, while the body
    # was still on its way (the read waiting on the server was broken off)
    assert 0 < sent < len(blob), sent
