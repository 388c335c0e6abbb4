"""The miner a live process runs: honest, or one of the simulator's attackers."""

from __future__ import annotations

import time
from collections.abc import Sequence

from node.service.engine import ModelState
from node.service.miner import Produce
from node.work import WorkConfig
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from seedswarm.devnet.engine import round_context
from seedswarm.sim.attackers import ATTACKS, Attacker, AttackSetup
from seedswarm.sim.roles import HonestMiner, Miner


def miner_produce(miner: Miner, miners: Sequence[bytes], work: WorkConfig) -> Produce:
    """`Produce` for the miner service: the simulator's `miner.work` on the live round."""

    def produce(state: ModelState) -> bytes:
        if isinstance(miner, HonestMiner | Attacker):
            # sequences must grow across restarts (protocol.replay): start from the clock
            miner.sequence = max(miner.sequence, time.time_ns() // 1000)
        return miner.work(round_context(state, miners, work))

    return produce


LIVE_ATTACKS = tuple(sorted(k for k in ATTACKS if k != "copycat"))
"""Attacks one process can run alone (a copycat needs its victim's miner in-process)."""


def live_miner(attack: str, key: NodeKey, work: WorkConfig) -> Miner:
    """The miner a process runs: honest, or the simulator's attacker class ``attack``."""
    if not attack:
        return HonestMiner(key)
    if attack not in LIVE_ATTACKS:
        raise ConfigError(f"attack {attack!r} cannot run live; known: {', '.join(LIVE_ATTACKS)}")
    return ATTACKS[attack]([key], AttackSetup(honest=(), work=work))[0]


