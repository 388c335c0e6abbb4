"""What the validator service needs of its model and its scoring, as protocols.

validator/ may not import node/ (which owns models and the apply rule) or the simulator (which
owns the `RoundCertifier` seam), so the composition root hands the service an object that
satisfies `ValidatorEngine`, built from exactly the code the simulator runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from protocol.follower import ReplicaPort
from protocol.messages import Contribution, ScoreReceipt
from protocol.roundlog import CertifiedEntry
from protocol.signing import Signed


class ValidatorEngine(ReplicaPort, Protocol):
    """A replica that can also score a round and apply the result before it is certified."""

    def certify(self, received: Sequence[Signed[Contribution]]) -> list[CertifiedEntry]:
        """The (contribution, weight) entries the round at `round_index` should include,
        from the screened messages as received (a scoring pipeline re-checks the raw bytes)."""
        ...

    def apply_entries(self, entries: Sequence[CertifiedEntry]) -> bytes:
        """Apply a round this validator certifies itself; returns the new model hash."""
        ...

    def validation_loss(self) -> float:
        """Loss of the current model on the task's validation batch."""
        ...


@runtime_checkable
class ReceiptSource(Protocol):
    """An engine whose scoring issues its own receipts (served instead of weight-only ones)."""

    def receipt(self, miner: bytes, round_index: int) -> ScoreReceipt | None:
        """The receipt this validator's scoring issued `miner` for `round_index`, if any."""
        ...
