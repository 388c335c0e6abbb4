"""The miner a live process runs: honest, or one of the simulator's attackers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.service.engine import ModelState
from node.service.miner import MinerService
from node.work import WorkConfig
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from protocol.membership import MembershipTimeline
from seedswarm.devnet.copycat import COPYCAT_STATUS, ContributionTap, LiveCopycat
from seedswarm.devnet.engine import round_context
from seedswarm.devnet.engine import round_miners as miners_of_round
from seedswarm.sim.attackers import ATTACKS, Attacker, AttackSetup
from seedswarm.sim.roles import HonestMiner, Miner

if TYPE_CHECKING:
    from validator.service.validator import ValidatorService


@dataclass(frozen=True)
class MinerProduce:
    """`Produce` for the miner service: the simulator's `miner.work` on the live round."""

    miner: Miner
    miners: tuple[bytes, ...] | MembershipTimeline
    """The registered miners: a timeline (each round its own set) or one fixed list."""
    work: WorkConfig

    def __call__(self, state: ModelState) -> bytes:
        miner = self.miner
        round_miners = miners_of_round(self.miners, state.round_index)
        if miner.key.public.raw not in round_miners:
            return b""  # not (yet) registered for this round: validators would refuse it
        if isinstance(miner, HonestMiner | Attacker):
            # sequences must grow across restarts (protocol.replay): start from the clock
            miner.sequence = max(miner.sequence, time.time_ns() // 1000)
        return miner.work(round_context(state, round_miners, self.work))


def miner_produce(
    miner: Miner, miners: Sequence[bytes] | MembershipTimeline, work: WorkConfig
) -> MinerProduce:
    """`Produce` for the miner service running ``miner`` among the registered ``miners``
    (a timeline: the set registered for each round)."""
    fixed = miners if isinstance(miners, MembershipTimeline) else tuple(miners)
    return MinerProduce(miner, fixed, work)


LIVE_ATTACKS = tuple(sorted(ATTACKS))
"""Attacks a miner process can run (a copycat copies what it hears; see `copycat_tap`)."""


def live_miner(attack: str, key: NodeKey, work: WorkConfig) -> Miner:
    """The miner a process runs: honest, or the simulator's attacker class ``attack``.

    A copycat is the live one (`seedswarm.devnet.copycat`): it copies from the gossip, so the
    composition root must run its tap (`copycat_tap`); until then it free-rides.
    """
    if not attack:
        return HonestMiner(key)
    if attack not in LIVE_ATTACKS:
        raise ConfigError(f"attack {attack!r} cannot run live; known: {', '.join(LIVE_ATTACKS)}")
    if attack == LiveCopycat.kind:
        return LiveCopycat(key)
    return ATTACKS[attack]([key], AttackSetup(honest=(), work=work))[0]


def copycat_tap(service: MinerService | ValidatorService) -> ContributionTap | None:
    """For a copycat miner: schedule its copies on the service's round clock, report to its
    state directory, and return the tap to run beside the service (None for any other node)."""
    if not isinstance(service, MinerService):
        return None
    produce = service.produce
    if not isinstance(produce, MinerProduce) or not isinstance(produce.miner, LiveCopycat):
        return None
    return produce.miner.attach(service.clock, service.config.state_dir / COPYCAT_STATUS)
