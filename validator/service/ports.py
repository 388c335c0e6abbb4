"""What the validator service needs of its model and its scoring, as protocols.

validator/ may not import node/ (which owns models and the apply rule) or the simulator (which
owns the `RoundCertifier` seam), so the composition root hands the service an object that
satisfies `ValidatorEngine`, built from exactly the code the simulator runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from protocol.follower import ReplicaPort
from protocol.messages import Contribution
from protocol.roundlog import CertifiedEntry


class ValidatorEngine(ReplicaPort, Protocol):
    """A replica that can also score a round and apply the result before it is certified."""

    def certify(self, contributions: Sequence[Contribution]) -> list[CertifiedEntry]:
        """The (contribution, weight) entries the round at `round_index` should include."""
        ...

    def apply_entries(self, entries: Sequence[CertifiedEntry]) -> bytes:
        """Apply a round this validator certifies itself; returns the new model hash."""
        ...

    def validation_loss(self) -> float:
        """Loss of the current model on the task's validation batch."""
        ...
