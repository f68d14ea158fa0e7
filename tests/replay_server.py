"""A local HTTP server that replays scripted responses, so clients are tested against real sockets.

    with ReplayServer() as server:
        server.add("/requests.json", b"", status=429, headers={"Retry-After": "0"}, times=1)
        server.add("/requests.json", body)  # served from then on
        ...
        assert len(server.requests) == 2

Each (path, match) pair has a queue of replies: the head is served until its `times` run out (None =
forever), then the next one. Routes are tried in the order added; the first whose path equals the
request path, whose `match(query)` holds and whose queue is not empty answers; otherwise 404.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

Query = dict[str, str]


@dataclass
class Reply:
    body: bytes
    status: int
    headers: dict[str, str]
    delay: float
    times: int | None


@dataclass
class Route:
    path: str
    match: Callable[[Query], bool] | None
    replies: deque[Reply] = field(default_factory=deque)


class ReplayServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Query]] = []
        self.targets: list[str] = []  # raw request targets, to check how a query was encoded on the wire
        self._routes: list[Route] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.replay = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def add(
        self,
        path: str,
        body: bytes,
        status: int = 200,
        headers: dict[str, str] | None = None,
        times: int | None = None,
        *,
        match: Callable[[Query], bool] | None = None,
        delay: float = 0.0,
    ) -> None:
        reply = Reply(body, status, headers or {}, delay, times)
        with self._lock:
            route = next((r for r in self._routes if r.path == path and r.match is match), None)
            if route is None:
                route = Route(path, match)
                self._routes.append(route)
            route.replies.append(reply)

    def _next_reply(self, target: str) -> Reply | None:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append((parts.path, query))
            self.targets.append(target)
            for route in self._routes:
                if route.path == parts.path and route.replies and (route.match is None or route.match(query)):
                    reply = route.replies[0]
                    if reply.times is not None:
                        reply.times -= 1
                        if reply.times <= 0:
                            route.replies.popleft()
                    return reply
        return None


class _Server(ThreadingHTTPServer):
    block_on_close = False  # don't wait out a deliberately slow reply on exit
    replay: ReplayServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        reply = self.server.replay._next_reply(self.path)
        if reply is None:
            reply = Reply(f"no replay for {self.path}".encode(), 404, {}, 0.0, None)
        time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except ConnectionError:
            pass  # the client timed out and hung up, which is what a delayed reply is for

    def log_message(self, format: str, *args: object) -> None:
        pass
