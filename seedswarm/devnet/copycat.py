"""The live copycat: a miner process that re-signs what another miner gossiped as its own.

The simulator's `Copycat` reads its victim's contribution from the victim's object; a live one
only has the network. `ContributionTap` listens to the contributions topic and keeps the
verified contributions of the last few rounds. `LiveCopycat` waits until late in the work
window (so that honest miners have published), takes the freshest contribution of the round
from another registered miner on the same certified model, and re-signs it under its own key
and sequence (same codes, scale and blocks, as the simulator's copycat does). With nothing to
copy it free-rides. What it did goes to a small JSON status file, for tests and operators.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from adapters.storage.logstore import write_atomic
from adapters.transport.base import Transport
from protocol.domain_types import ModelHash, PublicKey
from protocol.encoding import MAX_MESSAGE_BYTES
from protocol.errors import MessageRejected
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.roundlog import TOPIC_CONTRIBUTIONS
from protocol.rounds import Phase, RoundClock
from protocol.signing import Signed, open_envelope
from seedswarm.sim.attackers import FreeRider, resign
from training.round_context import RoundContext

_log = logging.getLogger("seedswarm.devnet.copycat")

COPY_MARGIN = 0.2
"""Share of the work window still left when the copycat copies: late enough that honest
miners have published, early enough that the copy beats the deadline."""
COPYCAT_STATUS = "copycat.json"
"""The copycat's status file, in its state directory."""
KEPT_ROUNDS = 3
KEPT_PER_ROUND = 64
KEPT_COPIES = 64


class ContributionTap:
    """Verified contributions heard on the gossip, by round, latest arrival last.

    `offer` runs on the event loop and `freshest` in the work thread, hence the lock. Memory
    is bounded: the newest `KEPT_ROUNDS` rounds, `KEPT_PER_ROUND` messages each.
    """

    def __init__(self, me: PublicKey, *, max_envelope_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.me = me
        self.max_envelope_bytes = max_envelope_bytes
        self._rounds: dict[int, deque[Signed[Contribution]]] = {}
        self._lock = threading.Lock()
        self.heard = 0
        self.invalid = 0

    def offer(self, raw: bytes, network_id: str) -> bool:
        """Keep one delivery if it is a valid contribution from someone else; True if kept."""
        self.heard += 1
        try:
            signed = open_envelope(raw, network_id=network_id,
                                   max_size=self.max_envelope_bytes, expect=Contribution)
        except MessageRejected:
            self.invalid += 1
            return False
        if signed.message.sender == self.me:
            return False
        round_index = signed.message.round_index
        with self._lock:
            if self._rounds and round_index < max(self._rounds) - KEPT_ROUNDS + 1:
                return False
            self._rounds.setdefault(round_index, deque(maxlen=KEPT_PER_ROUND)).append(signed)
            for old in sorted(self._rounds)[:-KEPT_ROUNDS]:
                del self._rounds[old]
        return True

    def freshest(
        self, round_index: int, base_model_hash: ModelHash, miners: Collection[PublicKey]
    ) -> Signed[Contribution] | None:
        """The latest contribution heard for this round and model from another of `miners`."""
        with self._lock:
            heard = list(self._rounds.get(round_index, ()))
        for signed in reversed(heard):
            c = signed.message
            if c.sender in miners and c.sender != self.me and c.base_model_hash == base_model_hash:
                return signed
        return None

    async def listen(self, transport: Transport) -> None:
        """Feed the tap from the contributions topic until cancelled."""
        subscription = await transport.subscribe(TOPIC_CONTRIBUTIONS)
        async for delivery in subscription:
            self.offer(delivery.data, transport.network_id)

    def snapshot(self) -> dict[str, int]:
        """Counters for the status file."""
        return {"heard": self.heard, "invalid": self.invalid}


class LiveCopycat(FreeRider):
    """Re-signs the freshest contribution of the round its tap heard; free-rides otherwise.

    Without a `schedule` it copies at once (whatever the tap holds when its work runs); the
    composition root gives it the round clock (`attach`) so that it copies late in the window.
    """

    kind = "copycat"

    def __init__(
        self,
        key: NodeKey,
        *,
        margin: float = COPY_MARGIN,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(key)
        self.tap = ContributionTap(key.public.raw)
        self.margin = margin
        self.now = now
        self.sleep = sleep
        self.schedule: RoundClock | None = None
        self.status_file: Path | None = None
        self.copied = 0
        self.free_rides = 0
        self.copies: deque[dict[str, Any]] = deque(maxlen=KEPT_COPIES)

    def attach(self, schedule: RoundClock, status_file: Path | None = None) -> ContributionTap:
        """Copy on `schedule`'s work windows, report to `status_file`; returns the tap to run."""
        self.schedule = schedule
        self.status_file = status_file
        return self.tap

    def copy_time(self, now: float) -> float | None:
        """When to copy in the clock round of `now` (None before genesis: nothing to copy)."""
        if self.schedule is None:
            return now
        phase = self.schedule.phase(now)
        if phase.phase is Phase.BEFORE_GENESIS:
            return None
        window = self.schedule.work_fraction * self.schedule.round_length
        return self.schedule.work_deadline(phase.round_index) - self.margin * window

    def work(self, ctx: RoundContext) -> bytes:
        now = self.now()
        when = self.copy_time(now)
        if when is None:
            return super().work(ctx)  # the service's warm-up run before genesis
        if when > now:
            self.sleep(when - now)
        found = self.tap.freshest(ctx.round_index, ctx.base_model_hash, ctx.miner_keys)
        if found is None:
            self.free_rides += 1
            _log.info("round %d: nothing to copy; free-riding", ctx.round_index)
            self._write_status()
            return super().work(ctx)
        self.sequence += 1
        sealed = resign(found.message, self.key, self.sequence)
        self.copied += 1
        self.copies.append({
            "round": ctx.round_index, "victim": found.message.sender.hex(),
            "victim_digest": found.digest.hex(), "sequence": self.sequence,
        })
        _log.info("round %d: copied the contribution of %s", ctx.round_index,
                  found.message.sender.hex()[:16])
        self._write_status()
        return sealed

    def status(self) -> dict[str, Any]:
        """A JSON-ready account of what the copycat did."""
        return {"kind": self.kind, "key": self.me.hex(), "copied": self.copied,
                "free_rides": self.free_rides,
                "copies": list(self.copies), "tap": self.tap.snapshot()}

    def _write_status(self) -> None:
        if self.status_file is not None:
            write_atomic(self.status_file, json.dumps(self.status(), sort_keys=True).encode())
