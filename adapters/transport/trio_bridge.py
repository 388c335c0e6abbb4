"""Run trio code (py-libp2p) inside a running asyncio event loop, using trio's guest mode.

Guest mode drives a trio run from the asyncio loop's own thread: trio ticks are scheduled as
asyncio callbacks and only trio's blocking I/O wait sits in a helper thread. So both worlds
share one thread, and crossing between them needs no locks, only the right scheduling call:

- asyncio -> trio: `await bridge.call(fn, *args)` starts `fn` as a task in the bridge's
  nursery and awaits its result; cancelling the asyncio caller cancels the trio task.
- trio -> asyncio: `await bridge.call_asyncio(coro_fn, *args)` from trio code runs a
  coroutine as an asyncio task and awaits its result.

Only one trio run can exist per thread, so every libp2p host on a loop shares one bridge
(`TrioBridge.acquire`), reference-counted and shut down when its last user releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import outcome
import trio

from adapters.transport.base import TransportClosed

T = TypeVar("T")
_log = logging.getLogger("adapters.transport.trio_bridge")

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TrioBridge] = (
    weakref.WeakKeyDictionary()
)


class TrioBridge:
    """One trio guest run hosted by one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._done: asyncio.Future[None] = loop.create_future()
        self._users = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def acquire(cls) -> TrioBridge:
        """The running loop's shared bridge, started on first use; pair with `release`."""
        loop = asyncio.get_running_loop()
        bridge = _shared.get(loop)
        if bridge is None or bridge.finished:
            bridge = cls(loop)
            _shared[loop] = bridge
        async with bridge._lock:
            if bridge._token is None:
                await bridge._start()
            bridge._users += 1
        return bridge

    async def release(self) -> None:
        """Drop one user; the last one shuts the trio run down and waits for it to end."""
        async with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            if _shared.get(self._loop) is self:
                del _shared[self._loop]
            await self._shutdown()

    @property
    def finished(self) -> bool:
        """True once the trio run has ended (no trio task of this bridge is alive)."""
        return self._done.done()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run trio function `fn(*args)` in the bridge and return its result to asyncio."""
        token, nursery = self._require_running()
        result: asyncio.Future[T] = self._loop.create_future()
        scope = trio.CancelScope()

        async def runner() -> None:
            with scope:
                try:
                    value = await fn(*args)
                except trio.Cancelled:
                    _settle(result, exception=TransportClosed("trio task was cancelled"))
                    raise
                except Exception as exc:
                    _settle(result, exception=exc)
                else:
                    _settle(result, value=value)
            # a cancelled scope swallows its Cancelled, so report it explicitly
            _settle(result, exception=TransportClosed("trio task was cancelled"))

        try:
            token.run_sync_soon(nursery.start_soon, runner)
        except trio.RunFinishedError:
            raise TransportClosed("the trio bridge is not running") from None
        try:
            # a run that dies (or ends) under the call never settles `result`: never hang on it
            await asyncio.wait((result, self._done), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._cancel_soon(scope)
            raise
        if not result.done():
            result.cancel()
            raise TransportClosed("the trio bridge stopped during the call")
        return result.result()

    def when_finished(self, callback: Callable[[], object]) -> None:
        """Call `callback()` on the asyncio loop once the trio run has ended, however it ended."""
        self._done.add_done_callback(lambda _: callback())

    async def start_task(self, fn: Callable[..., Awaitable[None]], *args: Any) -> Any:
        """Start long-lived trio task `fn(*args, task_status=...)` in the bridge's nursery.

        Returns the value `fn` passes to `task_status.started`; the task keeps running after.
        """
        _, nursery = self._require_running()

        async def start() -> Any:
            return await nursery.start(fn, *args)

        return await self.call(start)

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Start a background trio task; its errors are logged, never raised into the run."""
        token, nursery = self._require_running()

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception:
                _log.exception("background trio task %s failed", getattr(fn, "__name__", fn))

        token.run_sync_soon(nursery.start_soon, guarded)

    async def call_asyncio(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """From trio: run `coro_fn(*args)` as an asyncio task and return its result."""
        token = trio.lowlevel.current_trio_token()
        finished = trio.Event()
        task = self._loop.create_task(coro_fn(*args))
        task.add_done_callback(lambda _: token.run_sync_soon(finished.set))
        try:
            await finished.wait()
        except trio.Cancelled:
            task.cancel()
            raise
        return task.result()

    async def _start(self) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()
        loop = self._loop

        def soon_threadsafe(callback: Callable[[], object]) -> None:
            loop.call_soon_threadsafe(callback)

        def soon(callback: Callable[[], object]) -> None:
            loop.call_soon(callback)

        trio.lowlevel.start_guest_run(
            self._main,
            ready,
            run_sync_soon_threadsafe=soon_threadsafe,
            run_sync_soon_not_threadsafe=soon,
            done_callback=self._on_done,
            host_uses_signal_set_wakeup_fd=True,
        )
        await ready

    async def _main(self, ready: asyncio.Future[None]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            _settle(ready, value=None)
            await trio.sleep_forever()

    def _on_done(self, run_outcome: outcome.Outcome[None]) -> None:
        if isinstance(run_outcome, outcome.Error):
            _log.error("trio guest run ended with an error", exc_info=run_outcome.error)
        self._token = None
        self._nursery = None
        if not self._done.done():
            self._done.set_result(None)

    async def _shutdown(self) -> None:
        if self._token is not None and self._nursery is not None:
            self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        await asyncio.shield(self._done)

    def _cancel_soon(self, scope: trio.CancelScope) -> None:
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):  # nothing left to cancel
                self._token.run_sync_soon(scope.cancel)

    def _require_running(self) -> tuple[trio.lowlevel.TrioToken, trio.Nursery]:
        if self._token is None or self._nursery is None:
            raise TransportClosed("the trio bridge is not running")
        return self._token, self._nursery


def _settle(
    future: asyncio.Future[T], *, value: T | None = None, exception: BaseException | None = None
) -> None:
    """Complete `future` unless it is already done (e.g. cancelled by its awaiter)."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(value)  # type: ignore[arg-type]
