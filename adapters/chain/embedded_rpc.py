"""The embedded chain for multi-process devnets: eth-tester served over loopback JSON-RPC.

eth-tester (py-evm) lives inside one Python process, but a devnet's nodes are separate
processes. This serves the devnet process's in-memory chain on 127.0.0.1 over HTTP: each
request goes through web3's own request/result formatting for the eth-tester provider, and the
Python result is turned back into JSON-RPC's hex form. One lock serialises requests, which is
what a single-threaded EVM needs anyway. Good for small devnets; use anvil for long runs.

eth-tester stamps a block with the time its predecessor was mined, so an idle chain's clock
stands still and a transaction that waits for a time window would revert forever. Like a real
chain, this one mines an (empty) block every second while the wall clock is ahead of it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hexbytes import HexBytes
from web3 import Web3

_log = logging.getLogger("adapters.chain.embedded_rpc")
BLOCK_INTERVAL_S = 1.0


def to_rpc(value: Any) -> Any:
    """A web3 Python result in JSON-RPC form: ints and bytes as 0x-hex, recursively."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_rpc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_rpc(v) for v in value]
    return value


class EmbeddedRpcServer:
    """Serves `w3` (an eth-tester Web3) at `url` from a background thread."""

    def __init__(self, w3: Web3, port: int = 0, host: str = "127.0.0.1") -> None:
        self.w3 = w3
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-rpc", daemon=True
        )
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="embedded-blocks", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> EmbeddedRpcServer:
        self._thread.start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._ticker.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _tick(self) -> None:
        tester: Any = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        while not self._stopping.wait(BLOCK_INTERVAL_S):
            with self._lock:
                latest = int(self.w3.eth.get_block("latest")["timestamp"])
                if time.time() >= latest + 1:
                    tester.mine_blocks(1)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC exchange."""
        ident = request.get("id")
        method, params = str(request.get("method")), list(request.get("params") or [])
        try:
            with self._lock:
                result = self.w3.manager.request_blocking(method, params)  # type: ignore[arg-type]
        except Exception as exc:  # every failure becomes a JSON-RPC error for the caller
            return {"jsonrpc": "2.0", "id": ident, "error": _error(exc)}
        return {"jsonrpc": "2.0", "id": ident, "result": to_rpc(result)}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if isinstance(body, list):
                    reply: Any = [server.answer(item) for item in body]
                else:
                    reply = server.answer(body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug(format, *args)

        return Handler


def _error(exc: Exception) -> dict[str, Any]:
    """A JSON-RPC error object; reverts keep their data so clients decode custom errors."""
    from adapters.chain.revert import revert_data_of

    data = revert_data_of(exc)
    if data is not None:
        return {"code": 3, "message": "execution reverted", "data": "0x" + data.hex()}
    return {"code": -32000, "message": str(exc.args[0]) if exc.args else repr(exc)}
