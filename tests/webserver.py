"""A real local HTTP server whose routes misbehave on purpose, for tests.

Routes are plain functions of the request handler, so a test can answer with any status,
header, body, delay or broken connection.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


def respond(handler: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"",
            headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    hdrs = {"Content-Length": str(len(body)), **(headers or {})}
    for k, v in hdrs.items():
        handler.send_header(k, v)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def static(body: bytes | str, status: int = 200, content_type: str = "text/html; charset=utf-8",
           headers: dict[str, str] | None = None) -> Route:
    data = body.encode("utf-8") if isinstance(body, str) else body

    def route(h: BaseHTTPRequestHandler) -> None:
        respond(h, status, data, {"Content-Type": content_type, **(headers or {})})

    return route


class TestWeb:
    """``with TestWeb("127.0.0.5") as web: web.route("/feed", static(...)); web.url("/feed")``."""

    __test__ = False  # not a pytest class

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.times: list[float] = []  # monotonic arrival time of each request
        self._lock = threading.Lock()
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with web._lock:
                    web.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                    web.times.append(time.monotonic())
                route = web.routes.get(self.path.split("?")[0])
                if route is None:
                    respond(self, 404, b"not found", {"Content-Type": "text/plain"})
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        # shutdown() waits for the loop's next poll: the default 0.5 s was half a second per test
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def route(self, path: str, handler: Route) -> str:
        self.routes[path] = handler
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for _m, p, _h in self.requests if p.split("?")[0] == path)

    def __enter__(self) -> "TestWeb":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def reset_connection(h: BaseHTTPRequestHandler) -> None:
    """Closes the socket with RST instead of answering."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    h.connection.close()
    h.close_connection = True
