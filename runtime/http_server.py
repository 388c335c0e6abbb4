"""A node's small HTTP server: a few GET routes (metrics, health, a dashboard), nothing more.

Operators' tools (Prometheus, Kubernetes probes, a browser) speak HTTP/1.1; the node answers
each request with one response and closes the connection, on the same asyncio loop as the node
itself, so an answer reflects the node's state at that moment and a node whose loop is stuck
stops answering (which is what a liveness probe is for). No framework: the request line and
headers are all it reads, bounded in size and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from protocol.errors import ConfigError

_log = logging.getLogger("runtime.http_server")

MAX_REQUEST_HEAD_BYTES = 16 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class HttpRequest:
    """What a route sees of a request."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResponse:
    """One answer: status, body and its content type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        return cls(status, (text + "\n").encode())


Route = Callable[[HttpRequest], Awaitable[HttpResponse]]


class HttpServer:
    """Serves `routes` (exact paths) on one TCP port until closed."""

    def __init__(self, routes: Mapping[str, Route], *, name: str, read_timeout_s: float,
                 setting: str = "") -> None:
        """`name` says what the port is for and `setting` which setting chooses it, in the
        one-line error a port that cannot be opened gives; `read_timeout_s` bounds how long a
        client may take to send its request."""
        self.routes = dict(routes)
        self.name = name
        self.setting = setting
        self.read_timeout_s = read_timeout_s
        self._server: asyncio.Server | None = None
        self.requests = 0

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose when asked for port 0)."""
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> HttpServer:
        """Listen on `host`:`port`; ConfigError naming the cause and the fix if it cannot."""
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            raise ConfigError(self._bind_error(host, port, exc)) from exc
        _log.info("%s on http://%s:%d", self.name, host, self.port)
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> HttpServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _bind_error(self, host: str, port: int, exc: OSError) -> str:
        where = f"{host}:{port}"
        choose = f" (setting {self.setting})" if self.setting else ""
        if exc.errno == errno.EADDRINUSE:
            return (f"the {self.name} port {where} is in use by another process: choose "
                    f"another port{choose} or stop what holds it")
        if exc.errno == errno.EACCES:
            return (f"no permission to listen on {where} for the {self.name}: use a port "
                    f"above 1023{choose}")
        if exc.errno in (errno.EADDRNOTAVAIL, -2, -3, -5):  # gaierror codes: unknown host
            return (f"cannot listen on {host} for the {self.name}: not an address of this "
                    "machine (use 127.0.0.1, 0.0.0.0 or one of its addresses)")
        return f"cannot listen on {where} for the {self.name}: {exc.strerror or exc}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            response, head_only = await self._answer(reader)
            self.requests += 1
            reason = _REASONS.get(response.status, "")
            head = (f"HTTP/1.1 {response.status} {reason}\r\n"
                    f"Content-Type: {response.content_type}\r\n"
                    f"Content-Length: {len(response.body)}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
            writer.write(head if head_only else head + response.body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or never sent a request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[HttpResponse, bool]:
        async with asyncio.timeout(self.read_timeout_s):
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                return HttpResponse.text(400, "request head too large"), False
        if len(raw) > MAX_REQUEST_HEAD_BYTES:
            return HttpResponse.text(400, "request head too large"), False
        parts = raw.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return HttpResponse.text(400, "not an HTTP request"), False
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return HttpResponse.text(405, "only GET and HEAD"), False
        url = urlsplit(target)
        route = self.routes.get(url.path)
        if route is None:
            known = ", ".join(sorted(self.routes))
            return HttpResponse.text(404, f"no such page; this node serves {known}"), False
        request = HttpRequest(method, url.path, dict(parse_qsl(url.query)))
        try:
            return await route(request), method == "HEAD"
        except Exception:  # one broken page must not take the node's endpoint down
            _log.exception("%s: %s failed", self.name, url.path)
            return HttpResponse.text(500, "internal error (see the node's log)"), False
