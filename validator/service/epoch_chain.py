"""A validator's on-chain duties for each finished epoch: commit, reveal, settle.

`due_step` is the pure schedule (which step an epoch's stage and the time call for); `EpochChain`
carries a step out through a `SettlementPort` (the contracts over web3, or the in-memory chain),
whose submission is once-only, so a restart can neither commit twice nor reveal different
weights. Calls block: the service runs them in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.chain.chain_errors import ChainError, ChainRevert
from adapters.chain.settlement_port import SettlementPort
from protocol.domain_types import PublicKey
from protocol.membership import MembershipTimeline
from protocol.settlement.params import EpochStatus, EpochWindows
from protocol.settlement.weight_vector import normalize_weights
from validator.weights import epoch_weights

_log = logging.getLogger("validator.service.epoch_chain")

NEXT_STAGE = {"open": "committed", "committed": "revealed", "revealed": "settled"}
STEP_OF_STAGE = {"open": "commit", "committed": "reveal", "revealed": "settle"}


def due_step(stage: str, windows: EpochWindows, now: float, margin_s: float) -> str | None:
    """"commit", "reveal" or "settle" when its window has opened (plus a margin), else None."""
    step = STEP_OF_STAGE.get(stage)
    opens = {
        "commit": windows.commit_opens,
        "reveal": windows.reveal_opens,
        "settle": windows.settle_opens,
    }
    if step is None or now < opens[step] + margin_s:
        return None
    return step


@dataclass
class EpochChain:
    """The chain side of epoch submission for one validator account."""

    port: SettlementPort
    miner_slots: dict[PublicKey, int]
    """Registered miners' node keys -> their slot in the contract's weight vector."""
    timeline: MembershipTimeline | None = None
    """The node's membership timeline: when it changes (a miner registered, one left), the
    slots are read again before the next commit."""
    _slots_revision: int = field(default=-1, repr=False)

    @classmethod
    def connect(cls, port: SettlementPort, timeline: MembershipTimeline | None = None
                ) -> EpochChain:
        """Reads the miner slots now, and again whenever `timeline` changes."""
        chain = cls(port, dict(port.miner_slots()), timeline)
        chain._slots_revision = -1 if timeline is None else timeline.revision
        return chain

    def refresh_slots(self) -> bool:
        """Re-read the slots if the timeline changed since the last read; True if read."""
        if self.timeline is None or self.timeline.revision == self._slots_revision:
            return False
        revision = self.timeline.revision
        self.miner_slots = dict(self.port.miner_slots())
        self._slots_revision = revision
        return True

    def windows(self, epoch: int) -> EpochWindows:
        return self.port.windows(epoch)

    def next_block_time(self) -> float:
        """The chain's time for a transaction sent now (the windows are judged by it)."""
        return self.port.next_block_time()

    def slot_vector(self, scores: Mapping[str, float]) -> tuple[int, ...] | None:
        """The uint16 weight vector of `scores` (hex node key -> score); None if nothing earned."""
        ppb = epoch_weights(scores)
        if not ppb:
            return None
        vector = [0] * (max(self.miner_slots.values(), default=-1) + 1)
        for miner, weight in ppb.items():
            slot = self.miner_slots.get(PublicKey(bytes.fromhex(miner)))
            if slot is not None:
                vector[slot] = weight
        if not any(vector):
            return None
        return normalize_weights(vector)

    def run_step(self, step: str, epoch: int, scores: Mapping[str, float]) -> str:
        """Carry out `step` for `epoch`; returns the epoch's new stage."""
        if step == "commit":
            self.refresh_slots()
            vector = self.slot_vector(scores)
            if vector is None:
                return "skipped"
            self.port.commit(epoch, vector)
        elif step == "reveal":
            self.port.reveal(epoch)
        else:
            self._settle(epoch)
        return NEXT_STAGE[STEP_OF_STAGE_INVERSE[step]]

    def _settle(self, epoch: int) -> None:
        status = self.port.epoch_status(epoch)
        if status == EpochStatus.OPEN:
            try:
                status = self.port.settle(epoch)
            except ChainRevert as exc:  # another validator may have settled it first
                if exc.error_name != "EpochAlreadySettled":
                    raise
                status = self.port.epoch_status(epoch)
        _log.info("epoch %d: %s", epoch, status.name)
        if status in (EpochStatus.OPEN, EpochStatus.SETTLING):
            raise ChainError(f"epoch {epoch} is still {status.name}")


def is_final_failure(exc: BaseException) -> bool:
    """A revert that retrying cannot fix (a window that closed, a conflicting record)."""
    name = getattr(exc, "error_name", "")
    return name.endswith("Closed") or name in ("RevealMismatch", "NoCommitment")


STEP_OF_STAGE_INVERSE = {step: stage for stage, step in STEP_OF_STAGE.items()}
