"""An OTLP/HTTP receiver on 127.0.0.1 that reads each export and answers 200, like a
collector, counting the exports and their bytes. In the benchmark's own process
(:func:`running`, a thread) or as a process of its own for benchmarks that must not
share the counted process (``python otlp_sink.py --port N``; stop it with SIGTERM)."""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector answers
    #: exports received, and their bytes, since the process started
    exports = 0
    received = 0
    _count = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Sink._count:
            Sink.exports += 1
            Sink.received += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def running() -> Iterator[str]:
    """A sink on a free port for the block; yields its ``/v1/traces`` endpoint."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/traces"
    finally:
        httpd.shutdown()
        httpd.server_close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=4319)
    ThreadingHTTPServer(("127.0.0.1", p.parse_args().port), Sink).serve_forever()
