"""Keeping a replica on the certified history: in order, durably, final rounds only.

Miners and validators both follow the chain of round bundles. A round's bundle is a leader's
proposal; it is applied only once it is final (protocol.finality: validators holding a stake
majority approve it, the leader's own signature counting as its approval). Until then a round
may hold several candidates, keyed by certificate digest and bounded per leader and per round,
so an elected leader that equivocates cannot displace the bundle the validators endorse.

Bundles may arrive early (kept, bounded), twice (ignored), or not at all (fetched from peers,
with their proof of finality). Each applied bundle is first written to the on-disk log (with the
endorsements that made it final), then applied, then checkpointed, so a restart after a crash
at any point finds either the checkpoint of that round or the log entry that reproduces it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from adapters.storage.logstore import RoundLogStore
from adapters.transport.base import Transport
from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.errors import ConsensusError, MessageRejected, RejectReason
from protocol.finality import (
    FINALITY_THRESHOLD,
    EndorsementBook,
    FinalizedRound,
    SignedEndorsement,
    approving_stake,
    open_finalized,
)
from protocol.membership import MembershipTimeline, Stakes, StakesAt, stakes_at
from protocol.roundlog import RoundBundle, open_bundle
from runtime.catchup import fetch_bundles
from runtime.gossip_latency import GossipLatency
from runtime.peergate import PeerGate

MAX_PENDING_ROUNDS = 16
MAX_CANDIDATES_PER_ROUND = 8
MAX_CANDIDATES_PER_LEADER = 2
# Late or repeated endorsements are normal on gossip: not held against the sending peer.
_HARMLESS = frozenset({RejectReason.DUPLICATE, RejectReason.WRONG_ROUND})
_log = logging.getLogger("runtime.follower")
KEPT_FINALS = 256
"""Final rounds remembered for status pages (`Follower.finals`)."""


@dataclass(frozen=True)
class FinalRecord:
    """One round this replica applied: who certified it, who approved it, what it gave."""

    round_index: int
    leader: PublicKey
    new_model_hash: ModelHash
    contributions: int
    approvers: tuple[PublicKey, ...]
    """Validators whose approval counted (the leader's own signature included)."""
    approving_stake: int
    total_stake: int
    applied_at: float
    via: str
    """gossip, catch-up or the local log."""


class ReplicaPort(Protocol):
    """What the follower needs of a node's model state."""

    @property
    def round_index(self) -> int: ...

    @property
    def model_hash(self) -> ModelHash: ...

    def apply_bundle(self, bundle: RoundBundle) -> ModelHash:
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
    """Applies final bundles to a replica in round order; see the module docstring."""

    def __init__(
        self,
        replica: ReplicaPort,
        state_dir: Path,
        *,
        network_id: str,
        validators: Stakes | MembershipTimeline | StakesAt,
        max_envelope_bytes: int,
        on_applied: AppliedCallback | None = None,
        threshold: Fraction = FINALITY_THRESHOLD,
        latency: GossipLatency | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        """`validators`: the stake table (who leads, whose votes count) of each round, as a
        timeline or lookup (protocol.membership), or one table for every round. `latency`
        records how old gossiped certificates and endorsements are on arrival."""
        self.replica = replica
        self.state_dir = state_dir
        self.store = RoundLogStore(state_dir / "log")
        self.network_id = network_id
        # every bundle, vote and log entry is judged by the table of its own round
        self.stakes_at = stakes_at(validators)
        self.max_envelope_bytes = max_envelope_bytes
        self.threshold = threshold
        self.on_applied = on_applied
        self.endorsements = EndorsementBook(network_id, validators, max_envelope_bytes,
                                            threshold)
        self._candidates: dict[int, dict[Digest, RoundBundle]] = {}
        self.failures = 0
        """Certified rounds that did not reproduce their model hash here."""
        self.latency = latency
        self.now = now
        self.finals: deque[FinalRecord] = deque(maxlen=KEPT_FINALS)
        """The latest rounds applied, oldest first."""
        self.applied_via: Counter[str] = Counter()
        """Rounds applied since start, by how they came (gossip, catch-up, log)."""
        self.certified_contributions = 0
        """Contributions in the final certificates applied since start."""

    # -- opening ----------------------------------------------------------------------------

    def open_entry(self, raw: bytes) -> FinalizedRound:
        """Verify a log entry and its proof of finality (MessageRejected otherwise)."""
        return open_finalized(raw, network_id=self.network_id, validators=self.stakes_at,
                              max_envelope_bytes=self.max_envelope_bytes,
                              threshold=self.threshold)

    # -- inbound ----------------------------------------------------------------------------

    def receive(
        self, raw: bytes, peer: str, gate: PeerGate, now: float, origin: str | None = None
    ) -> bool:
        """Screen a gossiped bundle (forwarded by `peer`, published by `origin`, by default
        `peer`) through `gate` and keep it if valid and useful."""
        if gate.admit(peer, len(raw), now, origin=origin) is not None:
            return False
        try:
            bundle = open_bundle(raw, network_id=self.network_id, validators=self.stakes_at,
                                 max_envelope_bytes=self.max_envelope_bytes)
        except MessageRejected as exc:
            gate.reject(peer, exc.reason.value, exc.detail, now, origin=origin)
            return False
        gate.accept()
        if self.latency is not None:
            self.latency.observe("bundle", bundle.certificate.message.sequence, now)
        return self.offer(bundle)

    def receive_endorsement(
        self, raw: bytes, peer: str, gate: PeerGate, now: float, origin: str | None = None
    ) -> bool:
        """Screen a gossiped endorsement (forwarded by `peer`, published by `origin`) through
        `gate`; True if it was new and kept."""
        if gate.admit(peer, len(raw), now, origin=origin) is not None:
            return False
        self.endorsements.forget_before(self.replica.round_index)
        try:
            signed = self.endorsements.add_raw(raw)
        except MessageRejected as exc:
            if exc.reason not in _HARMLESS:
                gate.reject(peer, exc.reason.value, exc.detail, now, origin=origin)
            return False
        gate.accept()
        if self.latency is not None:
            self.latency.observe("endorsement", signed.message.sequence, now)
        return True

    def endorse_locally(self, signed: SignedEndorsement) -> None:
        """Count this validator's own endorsement (gossip does not echo it back).

        A repeated or stale one is ignored; MessageRejected if it is not by a validator.
        """
        self.endorsements.forget_before(self.replica.round_index)
        try:
            self.endorsements.add(signed)
        except MessageRejected as exc:
            if exc.reason not in _HARMLESS:
                raise

    def offer(self, bundle: RoundBundle) -> bool:
        """Keep a verified bundle as a candidate of its round; False if stale, too far ahead,
        on the wrong previous model, already held, or over the per-leader / per-round bounds."""
        at = self.replica.round_index
        r = bundle.round_index
        if not at <= r < at + MAX_PENDING_ROUNDS:
            return False
        if r == at and bundle.prev_model_hash != self.replica.model_hash:
            return False
        held = self._candidates.get(r, {})
        digest = bundle.certificate.digest
        leader = bundle.certificate.message.leader
        by_leader = sum(1 for b in held.values() if b.certificate.message.leader == leader)
        if (digest in held or len(held) >= MAX_CANDIDATES_PER_ROUND
                or by_leader >= MAX_CANDIDATES_PER_LEADER):
            return False
        held[digest] = bundle
        self._candidates[r] = held
        return True

    # -- state ------------------------------------------------------------------------------

    def candidates(self, round_index: int) -> list[RoundBundle]:
        """Unapplied bundles of `round_index`, in arrival order."""
        return list(self._candidates.get(round_index, {}).values())

    def ready(self) -> bool:
        """A final candidate for the replica's round, on the replica's model, is waiting."""
        return self._next_final() is not None

    # -- applying ---------------------------------------------------------------------------

    async def advance(self) -> list[int]:
        """Apply every final candidate that follows the replica; returns the rounds applied."""
        applied: list[int] = []
        while (bundle := self._next_final()) is not None:
            self._candidates[bundle.round_index].pop(bundle.certificate.digest)
            proof = self.endorsements.proof(bundle.certificate.message)
            if await self._apply(FinalizedRound(bundle, proof), "gossip"):
                applied.append(bundle.round_index)
        self._prune()
        return applied

    async def replay_local(self) -> list[int]:
        """Apply what the on-disk log holds beyond the checkpoint (after a restart)."""
        applied: list[int] = []
        while (raw := self.store.get(self.replica.round_index)) is not None:
            try:
                entry = self.open_entry(raw)
            except MessageRejected as exc:
                _log.warning("dropping unreadable or unfinalized log entry: %s", exc)
                self.store.path(self.replica.round_index).unlink(missing_ok=True)
                break
            if not await self._apply(entry, "log"):
                break
            applied.append(entry.round_index)
        self._prune()
        return applied

    async def catch_up(
        self,
        transport: Transport,
        peers: Sequence[str],
        *,
        until_round: int,
        request_timeout: float,
    ) -> list[int]:
        """Fetch and apply finalized entries from `peers` until the replica reaches
        `until_round`; an entry without proof of finality stops the batch."""
        applied: list[int] = []
        while self.replica.round_index < until_round:
            raws = await fetch_bundles(transport, peers, self.replica.round_index,
                                       timeout=request_timeout)
            before = self.replica.round_index
            for raw in raws:
                try:
                    entry = self.open_entry(raw)
                except MessageRejected as exc:
                    _log.warning("peer sent an invalid log entry: %s", exc)
                    break
                if not await self._apply(entry, "catch-up"):
                    break
                applied.append(entry.round_index)
            applied += await self.advance()
            if self.replica.round_index == before:
                break
        return applied

    def _next_final(self) -> RoundBundle | None:
        """The final candidate to apply next: most approving stake, then smallest digest."""
        at, model = self.replica.round_index, self.replica.model_hash
        final = [
            b for b in self._candidates.get(at, {}).values()
            if b.prev_model_hash == model and self.endorsements.is_final(b.certificate.message)
        ]
        if not final:
            return None
        return min(final, key=lambda b: (-self.endorsements.approving(b.certificate.message)[0],
                                         b.certificate.digest))

    def _prune(self) -> None:
        """Forget rounds the replica has passed and current candidates on another model."""
        at, model = self.replica.round_index, self.replica.model_hash
        for r in [r for r in self._candidates if r < at]:
            del self._candidates[r]
        current = self._candidates.get(at)
        if current is not None:
            for digest in [d for d, b in current.items() if b.prev_model_hash != model]:
                del current[digest]
            if not current:
                del self._candidates[at]
        self.endorsements.forget_before(at)

    @property
    def last_final(self) -> FinalRecord | None:
        """The latest round this replica applied since it started (None: none yet)."""
        return self.finals[-1] if self.finals else None

    def agrees(self) -> bool | None:
        """Whether the replica's model is the one the latest final certificate names (None:
        no round applied since start, or one is being applied right now)."""
        last = self.last_final
        if last is None or last.round_index + 1 != self.replica.round_index:
            return None
        return last.new_model_hash == self.replica.model_hash

    def _remember(self, entry: FinalizedRound, via: str) -> None:
        cert = entry.bundle.certificate.message
        votes = [s.message for s in entry.endorsements]
        stake, total = approving_stake(cert, votes, self.stakes_at(cert.round_index))
        approvers = dict.fromkeys([cert.leader, *(v.validator for v in votes if v.approve)])
        self.finals.append(FinalRecord(
            round_index=cert.round_index, leader=cert.leader,
            new_model_hash=cert.new_model_hash, contributions=len(entry.bundle.contributions),
            approvers=tuple(approvers), approving_stake=stake, total_stake=total,
            applied_at=self.now(), via=via))
        self.applied_via[via] += 1
        self.certified_contributions += len(entry.bundle.contributions)

    async def _apply(self, entry: FinalizedRound, via: str) -> bool:
        bundle = entry.bundle
        if (bundle.round_index != self.replica.round_index
                or bundle.prev_model_hash != self.replica.model_hash):
            _log.warning("round %d does not follow the replica; not applied", bundle.round_index)
            return False
        self.store.put(bundle.round_index, entry.encode())
        try:
            await asyncio.to_thread(self.replica.apply_bundle, bundle)
        except ConsensusError as exc:
            self.failures += 1
            _log.error("certified round %d does not reproduce: %s", bundle.round_index, exc)
            self.store.path(bundle.round_index).unlink(missing_ok=True)
            await asyncio.to_thread(self.replica.reload, self.state_dir)
            return False
        await asyncio.to_thread(self.replica.save, self.state_dir)
        self._remember(entry, via)
        if self.on_applied is not None:
            self.on_applied(bundle)
        return True
