"""The asyncio <-> trio guest-mode bridge: results, errors, cancellation, shutdown."""

from __future__ import annotations

import asyncio

import pytest
import trio

from adapters.transport.base import TransportClosed
from adapters.transport.trio_bridge import TrioBridge
from tests.transport.harness import eventually


def test_call_returns_trio_results_and_raises_trio_errors() -> None:
    async def double(value: int) -> int:
        await trio.sleep(0.001)
        return 2 * value

    async def fail() -> None:
        await trio.lowlevel.checkpoint()
        raise ValueError("from trio")

    async def scenario() -> None:
        bridge = await TrioBridge.acquire()
        try:
            assert await bridge.call(double, 21) == 42
            results = await asyncio.gather(*(bridge.call(double, i) for i in range(50)))
            assert results == [2 * i for i in range(50)]
            with pytest.raises(ValueError, match="from trio"):
                await bridge.call(fail)
        finally:
            await bridge.release()
        assert bridge.finished

    asyncio.run(scenario())


def test_cancelling_the_asyncio_caller_cancels_the_trio_task() -> None:
    async def scenario() -> None:
        bridge = await TrioBridge.acquire()
        observed: list[str] = []

        async def sleepy() -> None:
            try:
                await trio.sleep(60)
            except trio.Cancelled:
                observed.append("cancelled")
                raise

        caller = asyncio.create_task(bridge.call(sleepy))
        await asyncio.sleep(0.05)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await eventually(lambda: bool(observed), limit_s=5)
        assert observed == ["cancelled"]
        await bridge.release()

    asyncio.run(scenario())


def test_trio_code_can_await_asyncio_coroutines() -> None:
    async def scenario() -> None:
        bridge = await TrioBridge.acquire()

        async def asyncio_side(value: int) -> int:
            await asyncio.sleep(0.001)
            return value + 1

        async def trio_side() -> int:
            return await bridge.call_asyncio(asyncio_side, 41)

        assert await bridge.call(trio_side) == 42
        await bridge.release()

    asyncio.run(scenario())


def test_bridge_is_shared_per_loop_and_ends_with_its_last_user() -> None:
    async def scenario() -> None:
        first = await TrioBridge.acquire()
        second = await TrioBridge.acquire()
        assert first is second
        await first.release()
        assert not first.finished
        await second.release()
        assert first.finished
        with pytest.raises(TransportClosed):
            await first.call(trio.sleep, 0)
        third = await TrioBridge.acquire()
        assert third is not first
        await third.release()

    asyncio.run(scenario())


def test_shutdown_cancels_tasks_still_running_in_trio() -> None:
    async def scenario() -> None:
        bridge = await TrioBridge.acquire()
        finished: list[bool] = []

        async def forever() -> None:
            try:
                await trio.sleep_forever()
            finally:
                finished.append(True)

        bridge.spawn(forever)
        await asyncio.sleep(0.01)
        await bridge.release()
        assert finished == [True]

    asyncio.run(scenario())
