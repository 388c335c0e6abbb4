"""Keeping a replica on the certified history: in order, durably, and catching up when behind.

Miners and validators both follow the chain of round bundles. Bundles may arrive early (kept,
bounded), twice (ignored), or not at all (fetched from peers). Each applied bundle is first
written to the on-disk log, then applied, then checkpointed, so a restart after a crash at any
point finds either the checkpoint of that round or the log entry that reproduces it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from protocol.catchup import fetch_bundles
from protocol.errors import ConsensusError, MessageRejected
from protocol.logstore import RoundLogStore
from protocol.peergate import PeerGate
from protocol.roundlog import RoundBundle, open_bundle
from protocol.transport.base import Transport

MAX_PENDING_ROUNDS = 16
_log = logging.getLogger("protocol.follower")


class ReplicaPort(Protocol):
    """What the follower needs of a node's model state."""

    @property
    def round_index(self) -> int: ...

    @property
    def model_hash(self) -> bytes: ...

    def apply_bundle(self, bundle: RoundBundle) -> bytes:
        """Advance by one round; ConsensusError when the result is not the certified hash."""
        ...

    def save(self, directory: Path) -> Path:
        """Checkpoint atomically under `directory`."""
        ...

    def reload(self, directory: Path) -> None:
        """Return to the last checkpoint under `directory` (after a failed apply)."""
        ...


AppliedCallback = Callable[[RoundBundle], None]


class Follower:
    """Applies certified bundles to a replica in round order; see the module docstring."""

    def __init__(
        self,
        replica: ReplicaPort,
        state_dir: Path,
        *,
        network_id: str,
        validators: Sequence[tuple[bytes, int]],
        max_envelope_bytes: int,
        on_applied: AppliedCallback | None = None,
    ) -> None:
        self.replica = replica
        self.state_dir = state_dir
        self.store = RoundLogStore(state_dir / "log")
        self.network_id = network_id
        self.validators = tuple(validators)  # the stake table: who may lead which round
        self.max_envelope_bytes = max_envelope_bytes
        self.on_applied = on_applied
        self.pending: dict[int, RoundBundle] = {}
        self.failures = 0

    def open(self, raw: bytes) -> RoundBundle:
        """Verify a raw bundle (MessageRejected if it is not a valid certified round)."""
        return open_bundle(
            raw, network_id=self.network_id, validators=self.validators,
            max_envelope_bytes=self.max_envelope_bytes,
        )

    def receive(self, raw: bytes, peer: str, gate: PeerGate, now: float) -> bool:
        """Screen a gossiped bundle through `gate` and keep it if valid and useful."""
        if gate.admit(peer, len(raw), now) is not None:
            return False
        try:
            bundle = self.open(raw)
        except MessageRejected as exc:
            gate.reject(peer, exc.reason.value, exc.detail, now)
            return False
        gate.accept()
        return self.offer(bundle)

    def offer(self, bundle: RoundBundle) -> bool:
        """Keep a verified bundle for later application; False if it is stale or too far."""
        at = self.replica.round_index
        if not at <= bundle.round_index < at + MAX_PENDING_ROUNDS:
            return False
        self.pending.setdefault(bundle.round_index, bundle)
        return True

    async def advance(self) -> list[int]:
        """Apply every pending bundle that follows the replica; returns the rounds applied."""
        applied: list[int] = []
        while (bundle := self.pending.pop(self.replica.round_index, None)) is not None:
            if await self._apply(bundle):
                applied.append(bundle.round_index)
        stale = [r for r in self.pending if r < self.replica.round_index]
        for r in stale:
            del self.pending[r]
        return applied

    async def replay_local(self) -> list[int]:
        """Apply what the on-disk log holds beyond the checkpoint (after a restart)."""
        applied: list[int] = []
        while (raw := self.store.get(self.replica.round_index)) is not None:
            try:
                bundle = self.open(raw)
            except MessageRejected as exc:
                _log.warning("dropping unreadable log entry: %s", exc)
                self.store.path(self.replica.round_index).unlink(missing_ok=True)
                break
            if not await self._apply(bundle):
                break
            applied.append(bundle.round_index)
        return applied

    async def catch_up(
        self,
        transport: Transport,
        peers: Sequence[str],
        *,
        until_round: int,
        request_timeout: float,
    ) -> list[int]:
        """Fetch and apply bundles from `peers` until the replica reaches `until_round`."""
        applied: list[int] = []
        while self.replica.round_index < until_round:
            raws = await fetch_bundles(transport, peers, self.replica.round_index,
                                       timeout=request_timeout)
            before = self.replica.round_index
            for raw in raws:
                try:
                    self.offer(self.open(raw))
                except MessageRejected as exc:
                    _log.warning("peer sent an invalid log entry: %s", exc)
                    break
            applied += await self.advance()
            if self.replica.round_index == before:
                break
        return applied

    async def _apply(self, bundle: RoundBundle) -> bool:
        self.store.put(bundle.round_index, bundle.encode())
        try:
            await asyncio.to_thread(self.replica.apply_bundle, bundle)
        except ConsensusError as exc:
            self.failures += 1
            _log.error("certified round %d does not reproduce: %s", bundle.round_index, exc)
            self.store.path(bundle.round_index).unlink(missing_ok=True)
            await asyncio.to_thread(self.replica.reload, self.state_dir)
            return False
        await asyncio.to_thread(self.replica.save, self.state_dir)
        if self.on_applied is not None:
            self.on_applied(bundle)
        return True
