"""Faults a chaos test controls, on loopback only and only for processes it starts:
a Redis server of its own on a free port, and a TCP proxy it can cut (or slow) between
pixelmill and a shared server (RabbitMQ, S3) without touching that server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from benchmarks._harness.s3 import free_ports

from tests.helpers import IN_CI


@dataclass(frozen=True)
class Trickle:
    """How a proxy slows answers: each connection's first HTTP head (up to the blank
    line) goes at once, then ``size`` bytes every ``pause`` seconds."""

    size: int = 256
    pause: float = 0.05


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream``. :meth:`cut` drops every connection
    and refuses new ones (reset at once) until :meth:`restore`. With ``trickle``, what
    upstream answers reaches the client slowly after its head; ``trickled`` counts the
    bytes sent so (a pump stops when either side hangs up or the proxy closes)."""

    def __init__(
        self, upstream_host: str, upstream_port: int, trickle: Trickle | None = None
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.trickle = trickle
        self.trickled = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = True
        self._closed = False
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="chaos-proxy").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks.update((client, upstream))
            down = self._pump if self.trickle is None else self._trickle
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=down, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        self._hang_up(src, dst)

    def _trickle(self, src: socket.socket, dst: socket.socket) -> None:
        assert self.trickle is not None
        head = b""
        try:
            while b"\r\n\r\n" not in head and (data := src.recv(65536)):
                head += data
            end = head.find(b"\r\n\r\n") + 4 if b"\r\n\r\n" in head else len(head)
            dst.sendall(head[:end])
            pending = head[end:]
            while not self._closed and (pending or (pending := src.recv(65536))):
                piece, pending = pending[: self.trickle.size], pending[self.trickle.size :]
                dst.sendall(piece)
                self.trickled += len(piece)
                time.sleep(self.trickle.pause)
        except OSError:
            pass
        self._hang_up(src, dst)

    @staticmethod
    def _hang_up(src: socket.socket, dst: socket.socket) -> None:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._up = False
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            _reset(s)

    def restore(self) -> None:
        self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


def _reset(sock: socket.socket) -> None:
    """Abort ``sock`` (RST). ``shutdown`` first: a plain ``close`` would wait for the
    pump thread blocked in ``recv`` on it, and the peer would notice nothing."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def tcp_proxy(host: str, port: int, trickle: Trickle | None = None) -> Iterator[TcpProxy]:
    proxy = TcpProxy(host, port, trickle)
    try:
        yield proxy
    finally:
        proxy.close()


class OwnRedis:
    """A ``redis-server`` this test started (no persistence) on a free loopback port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is not installed; CI requires it", pytrace=False)
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_ports(1)[0]
        self.dir = Path(tempfile.mkdtemp(prefix="pm-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
