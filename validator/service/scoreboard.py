"""What a validator saw, kept for its operators: per round, per miner, per refusal reason.

The validator's books that count (epoch scores, ratings) are the ledger and the rating store;
this is the record a person reads to understand them: how many contributions each round
brought and how many this validator would certify, who certified the round and how much stake
approved it, every refusal by its reason, each miner's latest receipts (the one-line "why this
score"), and how its on-chain steps went. Bounded in memory; not persisted (a restart starts a
new record, as Prometheus counters do).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from protocol.messages import ScoreReceipt
from runtime.follower import FinalRecord
from validator.receipts import reason_class
from validator.service.ports import RoundDecision

KEPT_ROUNDS = 256
KEPT_RECEIPTS = 32
"""Receipts remembered per miner (the latest ones)."""


@dataclass
class RoundEntry:
    """One round as this validator lived it."""

    round_index: int
    received: int = 0
    """Contributions it scored (screened at the door, one per miner)."""
    accepted: int = 0
    """Contributions its own decision would certify."""
    refused: int = 0
    """Contributions its scoring refused (no reward: a gate, no improvement, ...)."""
    scored_at: float | None = None
    leader: str | None = None
    """Hex key of the validator whose certificate became final."""
    certified: int = 0
    """Contributions in the final certificate."""
    approvers: tuple[str, ...] = ()
    approving_share: float = 0.0
    final_at: float | None = None


class Scoreboard:
    """See the module docstring."""

    def __init__(self) -> None:
        self.rounds: OrderedDict[int, RoundEntry] = OrderedDict()
        self.refusals: Counter[str] = Counter()
        """Scored contributions that earned nothing, by reason class (receipts.reason_class)."""
        self.refusals_by_miner: dict[str, Counter[str]] = {}
        self.accepted = 0
        self.scored = 0
        self.receipts: dict[str, deque[ScoreReceipt]] = {}
        """Hex miner key -> its latest receipts from this validator, oldest first."""
        self.chain_steps: Counter[tuple[str, str]] = Counter()
        """(step, result) of its on-chain epoch steps: commit/reveal/settle x ok/retry/failed/
        skipped."""

    def entry(self, round_index: int) -> RoundEntry:
        found = self.rounds.get(round_index)
        if found is None:
            found = self.rounds[round_index] = RoundEntry(round_index)
            while len(self.rounds) > KEPT_ROUNDS:
                self.rounds.popitem(last=False)
        return found

    def book_decision(self, decision: RoundDecision, now: float) -> None:
        """This validator's own scoring of a round."""
        entry = self.entry(decision.round_index)
        entry.received = len(decision.received)
        entry.accepted = len(decision.entries)
        entry.scored_at = now
        self.accepted += entry.accepted
        self.scored += entry.received
        senders = {s.message.sender for s in decision.received}
        refused = 0
        for miner, receipt in sorted(decision.receipts.items()):
            key = miner.hex()
            kept = self.receipts.setdefault(key, deque(maxlen=KEPT_RECEIPTS))
            kept.append(receipt)
            reason = reason_class(receipt.reason)
            if reason != "scored" and miner in senders:
                refused += 1
                self.refusals[reason] += 1
                self.refusals_by_miner.setdefault(key, Counter())[reason] += 1
        entry.refused = refused

    def book_final(self, record: FinalRecord) -> None:
        """A round the network made final (whoever certified it)."""
        entry = self.entry(record.round_index)
        entry.leader = record.leader.hex()
        entry.certified = record.contributions
        entry.approvers = tuple(v.hex() for v in record.approvers)
        entry.approving_share = (record.approving_stake / record.total_stake
                                 if record.total_stake else 0.0)
        entry.final_at = record.applied_at

    def book_chain(self, step: str, result: str) -> None:
        self.chain_steps[(step, result)] += 1

    def latest_receipt(self, miner_hex: str) -> ScoreReceipt | None:
        kept = self.receipts.get(miner_hex)
        return kept[-1] if kept else None
