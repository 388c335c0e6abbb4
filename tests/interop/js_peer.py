"""Drive the js-libp2p peer of tests/interop/js (peer.mjs) from asyncio: one Node.js process,
commands and events as JSON lines on its stdin and stdout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"
SCRIPT = JS_DIR / "peer.mjs"
_LINE_LIMIT = 1 << 20
_STOP_S = 5.0


def node_missing() -> str | None:
    """Why Node.js cannot run here (the test is skipped), or None."""
    if shutil.which("node") is None:
        return "node is not installed (the js-libp2p interop test needs Node.js 20+)"
    return None


def modules_missing() -> str | None:
    """Why the js peer's packages are not there (with node present, a failure), or None."""
    if not (JS_DIR / "node_modules" / "libp2p").is_dir():
        return (f"{JS_DIR}/node_modules is missing: run `make install-dev` "
                "(it runs `npm ci` there)")
    return None


@dataclass(frozen=True)
class JsMessage:
    """One GossipSub message the js peer delivered, as it saw it."""

    topic: str
    from_peer: str
    msg_id: str
    """The id js-libp2p computed with the configured msgIdFn, hex."""
    sha256: str
    """SHA-256 of the data as received, hex."""
    size: int


class JsPeer:
    """A running peer.mjs; `async with JsPeer() as peer` starts it and waits for `ready`."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self.messages: list[JsMessage] = []
        self.peer_id = ""
        self.addrs: list[str] = []
        self.stderr = b""

    async def __aenter__(self) -> JsPeer:
        self._ready = asyncio.get_running_loop().create_future()
        self._process = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), cwd=JS_DIR, limit=_LINE_LIMIT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            ready = await asyncio.wait_for(self._ready, timeout=30.0)
        except BaseException:
            await self.__aexit__()
            raise
        self.peer_id, self.addrs = ready["peer_id"], list(ready["addrs"])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):
                assert process.stdin is not None
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout=_STOP_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if process.stderr is not None:
            self.stderr = await process.stderr.read()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def call(self, cmd: str, timeout_s: float = 20.0, **args: Any) -> dict[str, Any]:
        """Send one command; its reply, or RuntimeError with the js side's error."""
        process = self._process
        assert process is not None and process.stdin is not None, "the js peer is not running"
        self._next_id += 1
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[self._next_id] = reply
        process.stdin.write(json.dumps({"id": self._next_id, "cmd": cmd, **args}).encode() + b"\n")
        await process.stdin.drain()
        answer = await asyncio.wait_for(reply, timeout=timeout_s)
        if not answer.get("ok"):
            raise RuntimeError(f"js peer {cmd} failed: {answer.get('error')}")
        return answer

    def received(self, topic: str) -> list[JsMessage]:
        return [m for m in self.messages if m.topic == topic]

    async def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        async for line in process.stdout:
            event = json.loads(line)
            kind = event.get("event")
            if kind == "ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(event)
            elif kind == "message":
                self.messages.append(JsMessage(event["topic"], event["from"], event["msg_id"],
                                               event["sha256"], event["size"]))
            elif kind == "reply":
                future = self._replies.pop(event.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(event)
        error = RuntimeError(f"the js peer exited (rc {await process.wait()})")
        for future in [*self._replies.values(), self._ready]:
            if future is not None and not future.done():
                future.set_exception(error)
