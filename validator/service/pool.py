"""The validator's inbox of contributions: screened, deduplicated, bounded per round.

Each message passes the peer gate (ban, size, rate), the envelope check (format, signature,
network), replay protection and membership; a failure is counted with its reason, against
the peer it proves at fault (runtime.peergate: never the signer of a message that someone
else sent again). At most one contribution per miner and round is kept, and only
for the rounds the validator may still certify, so memory stays bounded whatever peers send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from protocol.domain_types import ModelHash, PublicKey
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
    ) -> None:
        """`miners`: the registered miners of each round (timeline or lookup), or one set
        for every round."""
        self.network_id = network_id
        self.miners_at = miners_at(miners)
        self.max_envelope_bytes = max_envelope_bytes
        self.gate = gate
        self.replay = replay or ReplayGuard(past_rounds=1, future_rounds=ROUNDS_AHEAD)
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
        return [s for s in kept.values() if s.message.base_model_hash == base_model_hash]

    def _check(self, raw: bytes, current_round: int) -> Signed[Contribution]:
        signed = open_envelope(
            raw, network_id=self.network_id, max_size=self.max_envelope_bytes, expect=Contribution
        )
        if signed.message.sender not in self.miners_at(signed.message.round_index):
            raise MessageRejected(RejectReason.UNKNOWN_SENDER, "not a registered miner")
        self.replay.check(signed, current_round=current_round)  # type: ignore[arg-type]
        if signed.message.round_index < current_round:
            raise MessageRejected(RejectReason.WRONG_ROUND, "round already certified")
        return signed
