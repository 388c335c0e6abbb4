"""The validator's inbox of contributions: screened, deduplicated, bounded per round.

Each message passes the peer gate (ban, size, rate), the envelope check (format, signature,
network), membership, the equivocation check and replay protection; a failure is counted with
its reason, against the peer it proves at fault (runtime.peergate: never the signer of a
message that someone else sent again). A second valid contribution of one miner for one round
is an equivocation (protocol.equivocation): both messages are kept as the proof, which is
handed to `on_equivocation`, the miner's contributions of that round are never taken, and no
forwarder is blamed (relaying both is what honest peers do). At most one contribution per
miner and round is kept, and only
for the rounds the validator may still certify, so memory stays bounded whatever peers send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection

from protocol.domain_types import ModelHash, PublicKey
from protocol.equivocation import Equivocation, EquivocationBook
from protocol.errors import MessageRejected, RejectReason
from protocol.membership import MembershipTimeline, MinersAt, miners_at
from protocol.messages import Contribution
from protocol.replay import ReplayGuard
from protocol.signing import Signed, open_envelope
from runtime.peergate import PeerGate

ROUNDS_AHEAD = 1
ACTIVE_ROUNDS = 3
"""A registered miner is expected in a round if this validator heard from it in one of the
previous ACTIVE_ROUNDS rounds (see `ContributionPool.complete`)."""


class ContributionPool:
    """Contributions waiting to be certified, keyed by round then sender."""

    def __init__(
        self,
        network_id: str,
        miners: Collection[PublicKey] | MembershipTimeline | MinersAt,
        max_envelope_bytes: int,
        gate: PeerGate,
        replay: ReplayGuard | None = None,
        on_equivocation: Callable[[Equivocation], None] | None = None,
    ) -> None:
        """`miners`: the registered miners of each round (timeline or lookup), or one set
        for every round; `on_equivocation` is told of each new proof."""
        self.network_id = network_id
        self.miners_at = miners_at(miners)
        self.max_envelope_bytes = max_envelope_bytes
        self.gate = gate
        self.replay = replay or ReplayGuard(past_rounds=1, future_rounds=ROUNDS_AHEAD)
        self.equivocation = EquivocationBook()
        self.on_equivocation = on_equivocation
        self.rounds: dict[int, dict[PublicKey, Signed[Contribution]]] = {}
        self.heard: dict[int, set[PublicKey]] = {}
        """Senders of the contributions kept, per round (the recent rounds only)."""
        self.received = 0
        """Deliveries on the contributions topic."""
        self.refused: Counter[str] = Counter()
        """Deliveries refused at the door, by reason (the gate's or the envelope's)."""

    def receive(
        self, raw: bytes, peer: str, *, current_round: int, now: float, origin: str | None = None
    ) -> bool:
        """Screen one delivery, forwarded by `peer` and published by `origin` (by default
        `peer`); True if it was kept for certification."""
        self.received += 1
        dropped = self.gate.admit(peer, len(raw), now, origin=origin)
        if dropped is not None:
            self.refused[dropped] += 1
            return False
        try:
            signed = self._check(raw, current_round)
        except MessageRejected as exc:
            self.gate.reject(peer, exc.reason.value, exc.detail, now, origin=origin)
            self.refused[exc.reason.value] += 1
            return False
        except _Equivocated:
            self.refused["equivocation"] += 1  # the signer is at fault, not whoever relayed it
            return False
        self.gate.accept()
        kept = self.rounds.setdefault(signed.message.round_index, {})
        kept.setdefault(signed.message.sender, signed)
        self.heard.setdefault(signed.message.round_index, set()).add(signed.message.sender)
        return True

    def expected(self, round_index: int) -> frozenset[PublicKey]:
        """The miners worth waiting for in `round_index`: the registered ones heard from in
        the previous ACTIVE_ROUNDS rounds; all registered ones when this validator heard
        nobody then (start-up, restart), so it never guesses from no evidence."""
        miners = self.miners_at(round_index)
        window = range(round_index - ACTIVE_ROUNDS, round_index)
        recent = set().union(*(self.heard.get(r, set()) for r in window))
        if not recent:
            return frozenset(miners)
        return frozenset(m for m in miners if m in recent)

    def complete(self, round_index: int) -> bool:
        """Every expected miner has a contribution to `round_index` here (one is the most a
        miner may send), so waiting longer is unlikely to add anything. A registered miner
        silent for ACTIVE_ROUNDS rounds is not waited for: if it comes back, a round that
        closed early without it costs it that one round, and it is expected again next."""
        kept = self.rounds.get(round_index, {})
        expected = self.expected(round_index)
        return bool(expected) and all(m in kept for m in expected)

    def take(self, round_index: int, base_model_hash: ModelHash) -> list[Signed[Contribution]]:
        """The contributions of `round_index` computed on `base_model_hash`; older rounds go."""
        kept = self.rounds.pop(round_index, {})
        for stale in [r for r in self.rounds if r < round_index]:
            del self.rounds[stale]
        for old in [r for r in self.heard if r < round_index - ACTIVE_ROUNDS]:
            del self.heard[old]
        self.equivocation.forget_before(round_index)
        proven = self.equivocation.equivocators(round_index)
        return [s for s in kept.values()
                if s.message.base_model_hash == base_model_hash and s.message.sender not in proven]

    def learn(self, signed: Signed[Contribution]) -> Equivocation | None:
        """Compare a contribution verified elsewhere (a leader's bundle) with the one kept
        from its sender for its round; a new proof is recorded and returned."""
        proof = self.equivocation.observe(signed)
        if proof is not None:
            self.rounds.get(proof.round_index, {}).pop(proof.sender, None)
            if self.on_equivocation is not None:
                self.on_equivocation(proof)
        return proof

    def add_proof(self, proof: Equivocation) -> bool:
        """Keep a proof checked elsewhere (carried by a bundle); True when it is new here."""
        if not self.equivocation.add(proof):
            return False
        self.rounds.get(proof.round_index, {}).pop(proof.sender, None)
        if self.on_equivocation is not None:
            self.on_equivocation(proof)
        return True

    def _check(self, raw: bytes, current_round: int) -> Signed[Contribution]:
        signed = open_envelope(
            raw, network_id=self.network_id, max_size=self.max_envelope_bytes, expect=Contribution
        )
        if signed.message.sender not in self.miners_at(signed.message.round_index):
            raise MessageRejected(RejectReason.UNKNOWN_SENDER, "not a registered miner")
        if signed.message.round_index >= current_round and self.learn(signed) is not None:
            raise _Equivocated
        if signed.message.sender in self.equivocation.equivocators(signed.message.round_index):
            raise _Equivocated  # a third version: the proof is already kept
        self.replay.check(signed, current_round=current_round)  # type: ignore[arg-type]
        if signed.message.round_index < current_round:
            raise MessageRejected(RejectReason.WRONG_ROUND, "round already certified")
        return signed


class _Equivocated(Exception):
    """A contribution that proves (or repeats) its signer's equivocation; refused."""
