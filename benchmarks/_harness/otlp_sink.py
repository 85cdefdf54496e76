"""An OTLP/HTTP receiver on 127.0.0.1 (``--port``, default 4319) that reads each export
and answers 200, like a collector: for benchmarks that export spans from another
process. Stop it with SIGTERM."""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=4319)
    ThreadingHTTPServer(("127.0.0.1", p.parse_args().port), _Sink).serve_forever()
