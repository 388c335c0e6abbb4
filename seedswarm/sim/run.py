"""Running a whole simulation from a config: genesis, swarm, rounds, result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.messages import ScoreReceipt
from seedswarm.sim.config import SimConfig
from seedswarm.sim.report import SimResult
from seedswarm.sim.swarm import RoundCallback, Swarm, build_swarm, run_rounds
from training.genesis import build_genesis

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
        network=swarm.network,
        base=swarm.genesis.base_description,
        trainable_numel=swarm.genesis.trainable_numel,
        initial_val_loss=initial,
        records=tuple(records),
        times=swarm.times,
        replicas_checked=swarm.check_replicas,
        scoring=scoring_summary(swarm),
    )


def scoring_summary(swarm: Swarm) -> dict[str, Any] | None:
    """Rewards, receipts and costs of a run certified by the validator pipeline (JSON-ready)."""
    from dataclasses import asdict

    from seedswarm.sim.attackers import attacker_kind
    from validator.scorer import ScoringCertifier

    certifier = swarm.certifier
    if not isinstance(certifier, ScoringCertifier):
        return None
    shares = certifier.reward_totals()
    miners: dict[str, dict[str, Any]] = {}
    for miner in swarm.miners:
        key = miner.key.public.raw
        miners[key.hex()] = {
            "kind": attacker_kind(miner) or "honest",
            "reward_share": shares.get(key.hex(), 0.0),
            "receipts": [_receipt_json(r) for r in swarm.receipts(key)],
        }
    by_kind: dict[str, float] = {}
    for entry in miners.values():
        by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0.0) + entry["reward_share"]
    return {
        "reward_share_by_kind": by_kind,
        "verification_cost_fraction": certifier.totals.verification_fraction,
        "compute_passes": asdict(certifier.totals),
        "epoch_weights": certifier.epoch_weights(),
        "miners": miners,
    }


def _receipt_json(receipt: ScoreReceipt) -> dict[str, Any]:
    return {
        "round": receipt.round_index, "filters_passed": receipt.filters_passed,
        "verified": receipt.verified, "loss_delta_own": receipt.loss_delta_own,
        "loss_delta_random": receipt.loss_delta_random, "influence": receipt.influence,
        "rating_mu": receipt.rating_mu, "rating_sigma": receipt.rating_sigma,
        "weight_ppb": receipt.weight_ppb, "reason": receipt.reason,
    }
