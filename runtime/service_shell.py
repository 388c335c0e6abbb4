"""What the miner and validator services share around their pure decision machines.

Both drive a loop that asks a pure `next_action` what to do, and sleeps when the answer is to
wait: until the next moment the answer could change, or until an inbound message wakes it
(`Waker`). Both publish a JSON status file that operators and the devnet table read while it is
being rewritten (`write_status`: atomic), and both fetch the certified log from their peers
when the replica falls behind (`CatchUp`). Both time their phases (`PhaseTimings`), log one
line per final round (`final_round_line`) and say whether they are caught up (`is_ready`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.storage.logstore import write_atomic
from adapters.transport.base import Transport
from protocol.rounds import Patience, RoundClock, may_act
from runtime.follower import FinalRecord, Follower

MIN_SLEEP_S = 0.005
MAX_SLEEP_S = 1.0
"""A driver re-checks its clock at least this often, whatever the wake time it computed."""


class Waker:
    """A driver's sleep that inbound work cuts short (`set`)."""

    def __init__(self, max_sleep_s: float = MAX_SLEEP_S) -> None:
        self.max_sleep_s = max_sleep_s
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the driver now (or skip its next sleep if it is not sleeping)."""
        self._event.set()

    async def sleep_until(self, when: float, now: float) -> None:
        """Sleep until `when` (clock seconds, `now` being the current time), at most
        `max_sleep_s`, or until `set` is called."""
        delay = max(MIN_SLEEP_S, min(when - now, self.max_sleep_s))
        self._event.clear()
        with contextlib.suppress(TimeoutError):  # the timeout is the normal way to wake
            async with asyncio.timeout(delay):
                await self._event.wait()


def write_status(path: Path | None, status: Mapping[str, Any]) -> None:
    """Write a status snapshot as JSON, atomically (readers never see half a file);
    nothing when `path` is None."""
    if path is not None:
        write_atomic(path, json.dumps(status, sort_keys=True).encode())


class CatchUp:
    """Fetching the certified log from peers, and when that was last tried."""

    def __init__(self, peers: Sequence[str], request_timeout_s: float) -> None:
        self.peers = tuple(peers)
        self.request_timeout_s = request_timeout_s
        self.last: float = -math.inf
        """When the last attempt ended (-inf: never)."""
        self.attempts = 0

    async def run(
        self, follower: Follower, transport: Transport, until_round: int,
        now: Callable[[], float],
    ) -> list[int]:
        """Apply what the other peers serve until `until_round`; returns the rounds applied.
        The attempt is stamped with `now()` when it ends, failed or not."""
        self.attempts += 1
        others = [p for p in self.peers if p != transport.peer_id]
        try:
            return await follower.catch_up(transport, others, until_round=until_round,
                                           request_timeout=self.request_timeout_s)
        finally:
            self.last = now()


class PhaseTimings:
    """Seconds a node spent in each phase of its rounds (work, score, review, apply, ...):
    how many times, and how long in total."""

    def __init__(self) -> None:
        self.phases: dict[str, tuple[int, float]] = {}

    def add(self, phase: str, seconds: float) -> None:
        count, total = self.phases.get(phase, (0, 0.0))
        self.phases[phase] = (count + 1, total + seconds)

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Time the body of a `with` block as one run of `phase`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """{phase: {"count": n, "seconds": total}} for status files and metrics."""
        return {phase: {"count": n, "seconds": round(total, 4)}
                for phase, (n, total) in sorted(self.phases.items())}


def is_ready(running: bool, at_round: int, last_catch_up: float, clock: RoundClock, now: float,
             patience: Patience) -> bool:
    """Caught up with the certified history: the node is running, and its replica is at the
    clock's round, or the peers had nothing newer when it last asked (the network itself is
    behind the clock): the same test that lets it work on a round (protocol.rounds.may_act)."""
    return running and may_act(at_round, last_catch_up, clock, now, patience)


def final_round_line(record: FinalRecord, clock: RoundClock, extra: str = "") -> str:
    """One human line about a round this node applied, for the log."""
    lag = record.applied_at - clock.round_start(record.round_index)
    share = record.approving_stake / record.total_stake if record.total_stake else 0.0
    line = (f"round {record.round_index} final: certified by {record.leader.hex()[:12]}, "
            f"{record.contributions} contribution(s), {share:.0%} of the stake approving, "
            f"model {record.new_model_hash.hex()[:12]}, {lag:.1f} s after the round began"
            f" ({record.via})")
    return f"{line}; {extra}" if extra else line
