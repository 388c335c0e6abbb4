"""Attackers in live miner processes: the simulator's attack classes, injected by the devnet.

The production composition (seedswarm.launch) runs whatever `Miner` it is given; the devnet's
node process gives it one of these instead of an honest miner, and for a copycat also runs the
tap that feeds it the gossip (`copycat_sidecar`).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from adapters.transport.base import Transport
from node.honest_miner import HonestMiner, Miner
from node.service.miner import MinerService
from node.service.produce import MinerProduce
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from seedswarm.devnet.copycat import COPYCAT_STATUS, ContributionTap, LiveCopycat
from seedswarm.sim.attackers import ATTACKS, AttackSetup
from training.work import WorkConfig
from validator.service.validator import ValidatorService

LIVE_ATTACKS = tuple(sorted(ATTACKS))
"""Attacks a miner process can run (a copycat copies what it hears; see `copycat_sidecar`)."""


def live_miner(attack: str, key: NodeKey, work: WorkConfig) -> Miner:
    """The miner a process runs: honest, or the simulator's attacker class ``attack``.

    A copycat is the live one (`seedswarm.devnet.copycat`): it copies from the gossip, so the
    node must run its tap beside the service (`copycat_sidecar`); until then it free-rides.
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


def copycat_sidecar(service: MinerService | ValidatorService, transport: Transport
                    ) -> Coroutine[Any, Any, None] | None:
    """The task a copycat miner runs beside its service: its tap listening to the gossip."""
    tap = copycat_tap(service)
    return None if tap is None else tap.listen(transport)
