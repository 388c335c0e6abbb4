"""What the miner service runs each round: a `Miner`'s work on the live replica's round."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from node.honest_miner import Miner
from protocol.domain_types import PublicKey
from protocol.membership import MembershipTimeline, miners_at
from runtime.model_state import ModelState
from training.work import WorkConfig


@dataclass(frozen=True)
class MinerProduce:
    """`Produce` for the miner service: ``miner.work`` on the round the state is at."""

    miner: Miner
    miners: Collection[PublicKey] | MembershipTimeline
    """The registered miners: a timeline (each round its own set) or one fixed set."""
    work: WorkConfig

    def __call__(self, state: ModelState) -> bytes:
        miner = self.miner
        if miner.key.public.raw not in miners_at(self.miners)(state.round_index):
            return b""  # not (yet) registered for this round: validators would refuse it
        # sequences must grow across restarts (protocol.replay): start from the clock
        miner.sequence = max(miner.sequence, time.time_ns() // 1000)
        return miner.work(state.round_context(self.miners, self.work))
