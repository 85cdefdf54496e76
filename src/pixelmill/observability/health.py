"""Liveness and readiness for every process, and the small HTTP endpoint of processes
that are not the gateway (job workers): ``/livez`` (``/healthz``), ``/readyz`` and
``/metrics`` on a loopback port by default, ready for Kubernetes probes and Prometheus.

Readiness runs named checks (``database``, ``broker``, ``storage``, ``cache``); a
failing one is listed as ``unavailable`` and its exception text goes to the log only
(hosts, paths and versions are not for anonymous callers).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("pixelmill.health")

#: the answer of /livez
LIVE = {"status": "ok"}

Check = Callable[[], None]


def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, Any]]:
    """Run each named check; returns whether all passed and the body of ``/readyz``."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness: %s unavailable: %s: %s", name, type(exc).__name__, exc)
            results[name] = "unavailable"
    ready = all(v == "ok" for v in results.values())
    return ready, {"status": "ready" if ready else "not ready", "checks": results}


class HealthServer:
    """``/livez``, ``/healthz``, ``/readyz`` and ``/metrics`` over HTTP in a daemon thread.

    ``metrics`` returns the exposition body and its content type (``None``: no
    ``/metrics``); ``live`` says whether the process still does its work (a worker whose
    consumer died is not live)."""

    def __init__(
        self,
        host: str,
        port: int,
        checks: Mapping[str, Check],
        *,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
        live: Callable[[], bool] | None = None,
    ) -> None:
        self.checks = checks
        self.metrics = metrics
        self.live = live or (lambda: True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # probes every few seconds are not news

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="pm-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path in ("/livez", "/healthz"):
            alive = self.live()
            self._send(request, 200 if alive else 503, LIVE if alive else {"status": "dead"})
        elif path == "/readyz":
            ready, body = readiness(self.checks)
            self._send(request, 200 if ready else 503, body)
        elif path == "/metrics" and self.metrics is not None:
            payload, content_type = self.metrics()
            self._send_bytes(request, 200, payload, content_type)
        else:
            self._send(request, 404, {"status": 404, "title": "Not Found"})

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        self._send_bytes(request, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send_bytes(
        request: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("X-Content-Type-Options", "nosniff")
        request.end_headers()
        request.wfile.write(payload)


__all__ = ["LIVE", "HealthServer", "readiness"]
