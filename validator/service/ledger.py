"""What a validator accumulates across rounds, on disk: scores per epoch, losses, submissions.

Written atomically after every change (with the rating store beside it), so a validator that
restarts resumes with the same epoch scores and never submits an epoch twice (the chain
journal guards the transactions themselves).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.storage.logstore import write_atomic

LEDGER_VERSION = 1


@dataclass
class EpochRecord:
    """One epoch's accumulated miner scores (hex key -> sum of this validator's round reward
    scores) and its progress on-chain."""

    scores: dict[str, float] = field(default_factory=dict)
    stage: str = "open"
    """open -> committed -> revealed -> settled (or skipped: nothing to pay; failed: a window
    closed before this validator's step, or the chain refused it for good)."""
    reason: str = ""
    """Why a failed epoch failed, in one line."""
    forfeited: set[str] = field(default_factory=set)
    """Miners (hex key) proven to have cheated this epoch: their score stays 0."""


@dataclass
class Ledger:
    """Epoch records and the validation loss after each certified round."""

    path: Path | None = None
    epochs: dict[int, EpochRecord] = field(default_factory=dict)
    val_loss: dict[int, float] = field(default_factory=dict)
    last_round: int = -1
    """The last round whose weights were added (a replay after a restart adds nothing)."""

    def add_scores(self, epoch: int, round_index: int, weights: Mapping[str, float],
                   forfeited: Sequence[str] = ()) -> bool:
        """Add round `round_index`'s payable scores to `epoch`'s scores, once; the miners in
        `forfeited` (a failed audit this round) lose their score for `epoch` first."""
        if round_index <= self.last_round:
            return False
        self.last_round = round_index
        record = self.epochs.setdefault(epoch, EpochRecord())
        for miner in forfeited:
            record.scores.pop(miner, None)
        for miner, weight in weights.items():
            if miner not in record.forfeited:
                record.scores[miner] = record.scores.get(miner, 0.0) + weight
        self.save()
        return True

    def forfeit(self, epoch: int, miner: str) -> None:
        """Zero `miner`'s score in `epoch` and keep it at 0 (a proven equivocation)."""
        record = self.epochs.setdefault(epoch, EpochRecord())
        record.forfeited.add(miner)
        if miner in record.scores:
            record.scores[miner] = 0.0
        self.save()

    def record_loss(self, round_index: int, loss: float) -> None:
        """Remember the validation loss of the model round `round_index` produced."""
        self.val_loss[round_index] = loss
        self.save()

    def set_stage(self, epoch: int, stage: str, reason: str = "") -> None:
        """Move `epoch` to `stage` (with the reason, for a failure) and save."""
        record = self.epochs.setdefault(epoch, EpochRecord())
        record.stage = stage
        record.reason = reason
        self.save()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "epochs": {str(e): {"scores": r.scores, "stage": r.stage, "reason": r.reason,
                                "forfeited": sorted(r.forfeited)}
                       for e, r in sorted(self.epochs.items())},
            "val_loss": {str(r): v for r, v in sorted(self.val_loss.items())},
            "last_round": self.last_round,
        }

    def save(self) -> None:
        if self.path is not None:
            write_atomic(self.path, json.dumps(self.to_json(), sort_keys=True).encode())

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """The ledger at `path`, or an empty one bound to it."""
        if not path.exists():
            return cls(path=path)
        data = json.loads(path.read_text(encoding="utf-8"))
        epochs = {
            int(e): EpochRecord(dict(r["scores"]), str(r["stage"]), str(r.get("reason", "")),
                                set(r.get("forfeited", [])))
            for e, r in data["epochs"].items()
        }
        losses = {int(r): float(v) for r, v in data["val_loss"].items()}
        return cls(path=path, epochs=epochs, val_loss=losses, last_round=int(data["last_round"]))
