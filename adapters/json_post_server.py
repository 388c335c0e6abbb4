"""A small threaded HTTP server answering JSON POSTs on one path (the dev faucet, the broker
account service): the size limit, the JSON parsing and the error answers in one place."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1024

JsonHandler = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
"""A request's JSON object -> (HTTP status, JSON answer)."""


class JsonPostServer:
    """POST ``path`` with a JSON object: ``handle`` answers it. 404 on another path, 413 above
    ``MAX_BODY_BYTES``, 400 (``bad_request``) for a body that is not a JSON object, 502
    (``failure`` and the cause) when ``handle`` raises; the server keeps serving."""

    def __init__(self, path: str, handle: JsonHandler, *, name: str, bad_request: str,
                 failure: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = path
        self._handle = handle
        self._bad_request = bad_request
        self._failure = failure
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name,
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """(status, answer) for a request body."""
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError(body)
        except ValueError:
            return 400, {"error": self._bad_request}
        try:
            return self._handle(body)
        except Exception as exc:  # the chain or the broker failed: say so, keep serving
            return 502, {"error": f"{self._failure}: {exc}"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != server.path:
                    self._send(404, {"error": f"POST {server.path}"})
                    return
                size = int(self.headers.get("Content-Length", "0") or 0)
                if size > MAX_BODY_BYTES:
                    self._send(413, {"error": "request too large"})
                    return
                self._send(*server.answer(self.rfile.read(size)))

            def _send(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are not worth a log line each

        return Handler
