"""A real HTTP server on 127.0.0.1 that records requests and fails the first N with a chosen status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorder:
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""


@contextmanager
def serving(recorder: Recorder, path: str = "/hook") -> Iterator[Recorder]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            recorder.attempts += 1
            if recorder.attempts <= recorder.fail_first:
                self.send_response(recorder.fail_status)
                if recorder.retry_after is not None:
                    self.send_header("Retry-After", recorder.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            recorder.bodies.append(body)
            recorder.headers.append({key.lower(): value for key, value in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
