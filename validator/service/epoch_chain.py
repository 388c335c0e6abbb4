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


    def vote_slash(self, miner: PublicKey, epoch: int, evidence_hash: bytes) -> bool:
        """Votes that `miner` fabricated a contribution in `epoch` (`evidence_hash`: see
        `protocol.settlement.slashing.evidence_hash`, the SHA-256 of the signed contribution
        the recomputation contradicts). True if this vote slashed the miner's bond. A vote
        already cast, a miner already slashed or with no bond left are done, not failures:
        they return False, so a caller may call this again after a restart."""
        try:
            slashed = self.port.vote_slash(miner, epoch, evidence_hash)
        except ChainRevert as exc:
            if exc.error_name not in _SLASH_DONE:
                raise
            _log.info("slash vote on %s for epoch %d: %s", miner.hex()[:16], epoch,
                      exc.error_name)
            return False
        _log.warning("voted to slash %s for epoch %d (evidence %s): %s", miner.hex()[:16],
                     epoch, evidence_hash.hex()[:16], "slashed" if slashed else "pending")
        if slashed:
            self.miner_slots.pop(miner, None)
        return slashed


_SLASH_DONE = frozenset({"AlreadyVotedSlash", "AlreadySlashed", "NotSlashable"})
"""Refusals of a slash vote that mean there is nothing left for this validator to do."""


def is_final_failure(exc: BaseException) -> bool:
    """A revert that retrying cannot fix (a window that closed, a conflicting record)."""
    name = getattr(exc, "error_name", "")
    return name.endswith("Closed") or name in ("RevealMismatch", "NoCommitment")


STEP_OF_STAGE_INVERSE = {step: stage for stage, step in STEP_OF_STAGE.items()}
