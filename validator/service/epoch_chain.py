"""A validator's on-chain duties for each finished epoch: commit, reveal, settle.

`due_step` is the pure schedule (which step an epoch's stage and the time call for); `EpochChain`
carries a step out with adapters.chain's once-only weight submitter, so a restart can neither
commit twice nor reveal different weights. Calls block: the service runs them in a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.chain import ChainClient, ChainError, ChainRevert
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

    client: ChainClient
    miner_slots: dict[PublicKey, int]
    """Registered miners' node keys -> their slot in the contract's weight vector."""
    timeline: MembershipTimeline | None = None
    """The node's membership timeline: when it changes (a miner registered, one left), the
    slots are read again before the next commit."""
    _slots_revision: int = field(default=-1, repr=False)

    @classmethod
    def connect(cls, client: ChainClient, timeline: MembershipTimeline | None = None
                ) -> EpochChain:
        """Reads the miner slots now, and again whenever `timeline` changes."""
        chain = cls(client, read_miner_slots(client), timeline)
        chain._slots_revision = -1 if timeline is None else timeline.revision
        return chain

    def refresh_slots(self) -> bool:
        """Re-read the slots if the timeline changed since the last read; True if read."""
        if self.timeline is None or self.timeline.revision == self._slots_revision:
            return False
        revision = self.timeline.revision
        self.miner_slots = read_miner_slots(self.client)
        self._slots_revision = revision
        return True

    def windows(self, epoch: int) -> EpochWindows:
        return self.client.incentives.windows(epoch)

    def next_block_time(self) -> float:
        """The earliest timestamp the next block can carry: dev chains stamp blocks
        max(wall clock, parent + 1), so a burst of transactions runs chain time ahead."""
        latest = int(self.client.w3.eth.get_block("latest")["timestamp"])
        return max(time.time(), latest + 1.0)

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
        submitter = self.client.weights
        if submitter is None:
            raise ChainError("the chain client was connected without a weight journal")
        if step == "commit":
            self.refresh_slots()
            vector = self.slot_vector(scores)
            if vector is None:
                return "skipped"
            submitter.commit(epoch, vector)
        elif step == "reveal":
            submitter.reveal(epoch)
        else:
            self._settle(epoch)
        return NEXT_STAGE[STEP_OF_STAGE_INVERSE[step]]

    def _settle(self, epoch: int) -> None:
        incentives = self.client.incentives
        if incentives.epoch_status(epoch) == EpochStatus.OPEN:
            try:
                incentives.settle(epoch)
            except ChainRevert as exc:  # another validator may have settled it first
                if exc.error_name != "EpochAlreadySettled":
                    raise
        status = incentives.epoch_status(epoch)
        _log.info("epoch %d: %s", epoch, status.name)
        if status in (EpochStatus.OPEN, EpochStatus.SETTLING):
            raise ChainError(f"epoch {epoch} is still {status.name}")


def read_miner_slots(client: ChainClient) -> dict[PublicKey, int]:
    """Registered miners' node keys -> slot index, as the Registry holds them now."""
    slots: dict[PublicKey, int] = {}
    for index, account in enumerate(client.registry.miner_slots()):
        if int(account, 16) != 0:
            slots[client.registry.node_key_of(account)] = index
    return slots


def is_final_failure(exc: BaseException) -> bool:
    """A revert that retrying cannot fix (a window that closed, a conflicting record)."""
    name = getattr(exc, "error_name", "")
    return name.endswith("Closed") or name in ("RevealMismatch", "NoCommitment")


STEP_OF_STAGE_INVERSE = {step: stage for stage, step in STEP_OF_STAGE.items()}
