"""Running a whole simulation from a config: genesis, swarm, rounds, result."""

from __future__ import annotations

from collections.abc import Callable

from seedswarm.sim.config import SimConfig
from seedswarm.sim.genesis import build_genesis
from seedswarm.sim.report import SimResult
from seedswarm.sim.swarm import RoundCallback, Swarm, build_swarm, run_rounds

PretrainProgress = Callable[[int, float], None]


def simulate(
    config: SimConfig,
    *,
    on_round: RoundCallback | None = None,
    on_pretrain: PretrainProgress | None = None,
    swarm_factory: Callable[[SimConfig], Swarm] | None = None,
) -> SimResult:
    """Run ``config`` to the end and return its result."""
    if swarm_factory is not None:
        swarm = swarm_factory(config)
    else:
        swarm = build_swarm(config, build_genesis(config, progress=on_pretrain))
    initial = swarm.validation_loss()
    records = run_rounds(swarm, config.rounds, on_round)
    return SimResult(
        config=config,
        network_digest=swarm.network.digest().hex(),
        base=swarm.genesis.base_description,
        trainable_numel=swarm.genesis.trainable_numel,
        initial_val_loss=initial,
        records=tuple(records),
        times=swarm.times,
        replicas_checked=swarm.check_replicas,
    )
