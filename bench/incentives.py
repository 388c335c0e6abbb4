"""Does money follow real improvement, and does cheating earn nothing?

    python -m bench.incentives --json PATH [--quick]

A simulated network on the synthetic task (one torch thread) certified by the validator
pipeline (``validator.scorer``): honest miners of different capacities (K from the
network's maximum down to a quarter of it; one with a corrupted local copy of the data) plus
every attacker class of ``seedswarm.sim.attackers`` (the sybil operator with three identities).

Reported:

* ``attacker_reward_share``: per attacker class, its share of all rewards (epoch weights,
  every round carrying the same emission);
* ``spearman_reward_vs_loo``: over the honest miners, Spearman between reward share (paid
  plus owed: FO reward is held until the miner's next passed audit, deferred, not lost;
  ``details.spearman_paid_only_vs_loo`` counts what was released by the run's end) and
  leave-one-out contribution: the final validation loss of the same network re-run without
  that miner, minus the loss with it (the baseline run of the same script), averaged over
  ``repeats`` networks (a re-run draws other seeds for everyone: its trajectory noise is of
  the order of the smaller miners' contributions). ``details`` also gives the counterfactual
  *replay* LOO: the certified log replayed from genesis without that miner's entries,
  everyone else's work fixed (noise-free, DICE's ground-truth definition);
* ``rounds_to_recognize_new_miner``: an honest miner (the network's K) joins mid-run; rounds
  from its first contribution until its per-round reward share reaches 50 % of its steady
  share (its mean share over the last third of the run);
* ``verification_cost_fraction``: stage-2 verification forward passes / the forward passes the
  miners spent on the contributions that reached it (plus the honest-only and steady-state
  FO audit figures);
  ``details.verification_cost_fraction_past_probation`` leaves out each identity's first
  audit (its probation, and the audit that catches a first-round cheater): the standing cost
  of the audit policy, which the one-off audits approach as runs grow longer;
* ``details.outwaiting_loss_ratio``: the attackers that outwait probation or a loose check
  (post-probation partial fabricators at 2 % and 10 %, the always-round-up quantizer), in a
  network of their own with the honest miners: per attacker its reward share (paid: what the
  honest miners' pay lost to it; ``owed_share`` adds what it still holds), rounds certified,
  summed certified weight and the round it was caught, and their damage to training (final
  loss with them over the same network with them silent); their paid shares also appear in
  ``attacker_reward_share``;
* ``equivocator`` (in ``details``; its share also under ``attacker_reward_share``): a miner
  that signs a different version of its contribution for each validator, run on the live
  services in one process (``equivocator``): its reward share, the share of honest miners'
  certificate slots lost (rounds x honest miners not in the final certificate), and the most
  clock rounds in a row in which no round became final;
* ``loss_ratio_30pct_attackers``: final validation loss with 30 % of the identities attacking
  (sign-flip, scaled, noise) over the same honest miners alone (paired: the attackers'
  identities registered but silent; see ``loss_ratio``).
* ``validator_attacks``: a 40 % validator that evicts a voter after the epoch, burns honest
  miners' weight or lifts one miner, through the chain's settlement rules
  (``bench.validator_attacks``; ``--validator-attacks-only`` runs just these, in seconds).
* ``network_attackers`` (``--network-attacks``, on by default without ``--quick``): the
  sender-table flooder (MQTT) and the replayer of others' messages (libp2p) on real services
  and transports, each network run clean and attacked (``bench.incentives_network``): reward
  share (also under ``attacker_reward_share``), honest pay lost, rounds of finality stalled.

Every run here is a baseline of another: LOO against the full network, the 30 % network
against the honest-only one; times are reported as ratios to the full network's run.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from bench import validator_attacks
from bench.dice_testbed.rank_stats import spearman as rank_correlation
from protocol.apply import apply_updates_
from protocol.codecs import Codec, contribution_updates
from protocol.domain_types import PublicKey
from protocol.layout import ParamLayout
from protocol.netconfig import rule_default
from protocol.randomness import contribution_seeds, round_beacon
from seedswarm.devnet.equivocating_miner import run_equivocation, scenario_network
from seedswarm.sim.attackers import ATTACKS, OUTWAITING, attacker_kind
from seedswarm.sim.config import SimConfig
from seedswarm.sim.faults import CorruptedDataMiner
from seedswarm.sim.swarm import Swarm, build_swarm, miner_key, run_rounds
from training.genesis import ModelShape, build_genesis
from training.pretrain import validation_loss
from training.replica import contribution_scalars
from training.round_context import RoundContext
from validator.pipeline_types import MinerRound
from validator.scorer import ScoringCertifier

GOALS = {
    "attacker_reward_share": 0.01,
    "spearman_reward_vs_loo": 0.9,
    "rounds_to_recognize_new_miner": 5,
    "verification_cost_fraction": 0.10,
    "loss_ratio_30pct_attackers": 1.02,
}


@dataclass(frozen=True)
class HonestSpec:
    """One honest miner: its capacity K and how corrupted its local data is."""

    name: str
    scalars: int
    data_noise: float = 0.0
    joins_at: int = 0


class JoiningMiner(CorruptedDataMiner):
    """An honest miner that sends nothing before round ``joins_at`` (registered all along)."""

    def __init__(self, key: Any, scalars: int, data_noise: float, joins_at: int) -> None:
        super().__init__(key, scalars=scalars, data_noise=data_noise)
        self.joins_at = joins_at

    def work(self, ctx: RoundContext) -> bytes:
        return super().work(ctx) if ctx.round_index >= self.joins_at else b""


def base_config(quick: bool) -> SimConfig:
    return SimConfig(
        task="synthetic", base="scratch", shape=ModelShape(width=32, depth=1, heads=2, context=32),
        trainable="full", codec="fo", scalars=256, samples_per_miner=16, seed=0,
        rounds=12 if quick else 24, miners=1,
    )


def repeats(quick: bool) -> int:
    """Independent networks (different network ids: other beacons, seeds and data) averaged
    over: one network's leave-one-out differences carry the chaos of a re-run trajectory."""
    return 1 if quick else 4


def variant(config: SimConfig, index: int) -> SimConfig:
    return replace(config, network_id=f"seedswarm-incentives-{index}")


def honest_specs(config: SimConfig) -> list[HonestSpec]:
    k = network_k(config)
    sizes = (k, 3 * k // 4, k // 2, 3 * k // 8, k // 4)
    specs = [HonestSpec(f"K={n}", n) for n in sizes]
    return [*specs, HonestSpec(f"K={k} corrupted data", k, data_noise=0.3)]


def network_k(config: SimConfig) -> int:
    """The run's K (its network's, when the run leaves it to the network)."""
    return config.scalars or rule_default("scalars")


def all_attackers() -> tuple[tuple[str, int], ...]:
    """The attackers of the main network: every class caught in its first round. Those that
    outwait the audits (``OUTWAITING``) do nearly honest work for a while, which would change
    the honest miners' leave-one-out contributions; they get a network of their own
    (``outwaiting_loss_ratio``)."""
    return tuple((kind, 3 if kind == "sybil" else 1) for kind in ATTACKS
                 if kind not in OUTWAITING)


def make_swarm(config: SimConfig, specs: Sequence[HonestSpec]) -> Swarm:
    """The network of ``specs`` (keys by name, so a miner keeps its identity across runs)."""
    genesis = build_genesis(config)
    honest = [
        JoiningMiner(miner_key(config.seed, _index(s.name)), s.scalars, s.data_noise, s.joins_at)
        for s in specs
    ]
    return build_swarm(config, genesis, honest=honest)


def _index(name: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def run(config: SimConfig, specs: Sequence[HonestSpec]) -> tuple[Swarm, float, float]:
    """Run the network; returns it, its final validation loss and the wall time."""
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    swarm = make_swarm(config, specs)
    records = run_rounds(swarm, config.rounds)
    return swarm, records[-1].val_loss, time.perf_counter() - start


def replay_loss(config: SimConfig, swarm: Swarm, drop: PublicKey | None) -> float:
    """Final validation loss of the certified log replayed from genesis without ``drop``'s
    entries (the other entries of a round renormalized to sum 1, as the certifier's
    K-proportional weights would be): the counterfactual with everyone else's work fixed."""
    genesis = build_genesis(config)
    params = [t for _, t in genesis.named]
    layout = ParamLayout.of(genesis.named)
    net = swarm.network
    for entries in swarm.log:
        kept = [(c, w) for c, w in entries if c.sender != drop]
        total = sum(w for _, w in kept)
        updates = []
        for c, w in sorted(kept, key=lambda e: e[0].sender):
            beacon = round_beacon(net.network_id, c.round_index)
            seeds = contribution_seeds(net.network_id, beacon, c.sender, c.round_index,
                                       len(c.codes))
            updates += contribution_updates(Codec(c.codec), seeds, contribution_scalars(c),
                                            c.block_counts, net.outer_lr, w / total)
        with torch.no_grad():
            apply_updates_(params, layout, updates, net.direction)
    return validation_loss(genesis.model, genesis.task)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation, 0 when either side is constant (JSON has no NaN)."""
    rho = rank_correlation(xs, ys)
    return 0.0 if math.isnan(rho) else rho


def shares_by_kind(
    swarm: Swarm, owed: bool = False
) -> tuple[dict[str, float], dict[PublicKey, float]]:
    """Reward shares by attacker class and by miner: paid, or with ``owed`` also what miners
    hold until their next passed audit (``ScoringCertifier.reward_totals``)."""
    certifier = swarm.certifier
    assert isinstance(certifier, ScoringCertifier)
    totals = certifier.reward_totals(owed)
    by_kind: dict[str, float] = {}
    by_miner: dict[PublicKey, float] = {}
    for miner in swarm.miners:
        share = totals.get(miner.key.public.raw.hex(), 0.0)
        by_miner[miner.key.public.raw] = share
        kind = attacker_kind(miner)
        if kind is not None:
            by_kind[kind] = by_kind.get(kind, 0.0) + share
    return by_kind, by_miner


def round_shares(swarm: Swarm, miner: PublicKey) -> list[float]:
    """The miner's share of each round's total reward score (0 when nobody earned)."""
    certifier = swarm.certifier
    assert isinstance(certifier, ScoringCertifier)
    out = []
    for scoring in certifier.rounds:
        total = sum(m.reward for m in scoring.miners.values())
        mine = scoring.miners[miner].reward if miner in scoring.miners else 0.0
        out.append(mine / total if total > 0 else 0.0)
    return out


def recognition(config: SimConfig, quick: bool) -> dict[str, Any]:
    """Rounds until a newcomer earns half its steady share."""
    joins = config.rounds // 3
    k = network_k(config)
    specs = [HonestSpec("K=max", k), HonestSpec("K=max b", k), HonestSpec("K=half", k // 2),
             HonestSpec("K=3/4", 3 * k // 4), HonestSpec("newcomer", k, joins_at=joins)]
    swarm, _, seconds = run(replace(config, attackers=(("noise", 1), ("copycat", 1))), specs)
    key = miner_key(config.seed, _index("newcomer"))
    shares = round_shares(swarm, key.public.raw)
    tail = shares[-max(3, (config.rounds - joins) // 3):]
    steady = sum(tail) / len(tail)
    after = shares[joins:]
    rounds = next((i + 1 for i, s in enumerate(after) if steady > 0 and s >= 0.5 * steady), None)
    return {"rounds": rounds, "joins_at": joins, "steady_share": steady,
            "shares_after_joining": after, "seconds": seconds}


class Silent:
    """A registered identity that never sends anything."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.sequence = 0

    def work(self, ctx: RoundContext) -> bytes:
        return b""


def loss_ratio(config: SimConfig, specs: Sequence[HonestSpec], repeats: int) -> dict[str, Any]:
    """Final loss with 30 % attacking identities over the same honest miners alone.

    Paired: in the honest-only network the attackers' identities are registered but silent,
    so the data assignment is the same and any difference is the attackers' doing (a network
    that refuses them all from the first round reproduces the honest model bit for bit). The
    unpaired comparison (attackers not registered at all) is reported too; it differs by the
    trajectory noise of other data assignments and seeds.
    """
    n = len(specs)
    attackers = (("sign-flip", 1), ("scaled", 1), ("noise", 1))
    assert sum(c for _, c in attackers) / (n + 3) >= 0.3 - 1e-9
    attacked = paired = unpaired = seconds = 0.0
    identical = 0
    for index in range(repeats):
        net = replace(variant(config, index), attackers=attackers)
        swarm_a, a, t1 = run(net, specs)
        start = time.perf_counter()
        swarm_h = make_swarm(net, specs)
        swarm_h.miners = [m if attacker_kind(m) is None else Silent(m.key)
                          for m in swarm_h.miners]
        records = run_rounds(swarm_h, net.rounds)
        t2 = time.perf_counter() - start
        _, u, t3 = run(replace(net, attackers=()), specs)
        identical += records[-1].model_hash == swarm_a.replica.model_hash.hex()
        attacked += a / repeats
        paired += records[-1].val_loss / repeats
        unpaired += u / repeats
        seconds += t1 + t2 + t3
    return {"attacked": attacked, "honest_only": paired, "ratio": attacked / paired,
            "identical_final_models": identical, "repeats": repeats,
            "honest_only_unregistered": unpaired, "ratio_unpaired": attacked / unpaired,
            "attacker_fraction": 3 / (n + 3), "seconds": seconds}


def equivocator(rounds: int = 3) -> dict[str, Any]:
    """The equivocator (issue 15, defect 3), measured on live services in one process: the
    simulator has one certifier, so it cannot show validators that received different versions
    (seedswarm.devnet.equivocating_miner: three equal validators, two honest miners, a miner that
    sends each validator its own signed version every round)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.safetensors"
        run_ = run_equivocation(scenario_network(base, rounds), base, Path(tmp), rounds=rounds)
    return {
        "reward_share": run_.equivocator_reward_share,
        "honest_certificate_slots_lost": 1.0 - run_.honest_certified,
        "finality_stall_rounds": run_.stall_rounds, "final_in_clock_round": list(run_.final_in),
        "rounds_certifying_it": run_.equivocator_certified,
        "validators_holding_proof": run_.proven_by, "rounds": rounds,
        "seconds": time.perf_counter() - started,
    }


def steady_cost(certifier: ScoringCertifier) -> tuple[int, int]:
    """Verification and miner forward passes of the contributions made after each miner's
    first audit (its probation): the standing cost of the audit policy, without the one-off
    probation audit of every identity and the audit that catches a first-round cheater."""
    verify = mined = 0
    past: set[PublicKey] = set()
    for scoring in certifier.rounds:
        for miner, mr in scoring.miners.items():
            result = mr.verification
            if result is None:
                continue
            if miner in past:
                verify += result.cost.forward_passes
                mined += result.cost.miner_forward_passes
            elif result.verified is not None:
                past.add(miner)
    return verify, mined


def outwaiting(swarm: Swarm) -> dict[str, dict[str, Any]]:
    """Per attacker that outwaits the audits (``OUTWAITING``): the rounds its contribution
    was certified and its summed certified weight (the update it steered), and the round it
    was caught (None: never)."""
    certifier = swarm.certifier
    assert isinstance(certifier, ScoringCertifier)
    out: dict[str, dict[str, Any]] = {}
    for miner in swarm.miners:
        kind = attacker_kind(miner)
        if kind not in OUTWAITING:
            continue
        key = miner.key.public.raw
        certified = [w for entries in swarm.log for c, w in entries if c.sender == key]
        caught = next((s.round_index for s in certifier.rounds
                       if _failed(s.miners.get(key))), None)
        out[kind] = {"certified_rounds": len(certified), "certified_weight": sum(certified),
                     "caught_round": caught}
    return out


def _failed(mr: MinerRound | None) -> bool:
    return mr is not None and mr.verification is not None and mr.verification.verified is False


def outwaiting_loss_ratio(config: SimConfig, specs: Sequence[HonestSpec]) -> dict[str, Any]:
    """Training damage of the attackers that outwait the audits: final loss with them over
    the same network with their identities registered but silent (paired, as ``loss_ratio``)."""
    net = replace(variant(config, 0), attackers=tuple((k, 1) for k in OUTWAITING))
    start = time.perf_counter()
    swarm_a, attacked, _ = run(net, specs)
    swarm_h = make_swarm(net, specs)
    swarm_h.miners = [m if attacker_kind(m) is None else Silent(m.key) for m in swarm_h.miners]
    honest = run_rounds(swarm_h, net.rounds)[-1].val_loss
    paid, _ = shares_by_kind(swarm_a)
    owed, _ = shares_by_kind(swarm_a, owed=True)
    per = {kind: {**seen, "reward_share": paid.get(kind, 0.0), "owed_share": owed.get(kind, 0.0)}
           for kind, seen in outwaiting(swarm_a).items()}
    return {"attacked": attacked, "honest_only": honest, "ratio": attacked / honest,
            "per_attacker": per, "seconds": time.perf_counter() - start}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 2 minutes)")
    parser.add_argument("--validator-attacks-only", action="store_true",
                        help="only the minority-validator attacks on settlement (seconds)")
    parser.add_argument("--network-attacks", action=argparse.BooleanOptionalAction,
                        default=None, help="also run the network-level attackers on real "
                        "transports (bench.incentives_network; default: on unless --quick)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console()
    if args.validator_attacks_only:
        return _validator_attacks_only(console, args.json)
    config = replace(base_config(args.quick), attackers=all_attackers())
    specs = honest_specs(config)

    n = repeats(args.quick)
    keys = {s.name: miner_key(config.seed, _index(s.name)).public.raw for s in specs}
    rewards = dict.fromkeys(keys, 0.0)
    paid = dict.fromkeys(keys, 0.0)
    owed_by_kind: dict[str, float] = {}
    loo = dict.fromkeys(keys, 0.0)
    replay = dict.fromkeys(keys, 0.0)
    by_kind: dict[str, float] = {}
    full_losses: list[float] = []
    full_s = loo_s = 0.0
    verify = mined = honest_verify = honest_mined = value_passes = steady_v = steady_m = 0
    certifier: ScoringCertifier | None = None
    for index in range(n):
        net = variant(config, index)
        swarm, full_loss, seconds = run(net, specs)
        full_losses.append(full_loss)
        full_s += seconds
        kinds, by_miner = shares_by_kind(swarm)
        for kind, share in kinds.items():
            by_kind[kind] = by_kind.get(kind, 0.0) + share / n
        owed_kinds, owed_by_miner = shares_by_kind(swarm, owed=True)
        for kind, share in owed_kinds.items():
            owed_by_kind[kind] = owed_by_kind.get(kind, 0.0) + share / n
        for name, key in keys.items():
            paid[name] += by_miner[key] / n
            rewards[name] += owed_by_miner[key] / n
        scorer = swarm.certifier
        assert isinstance(scorer, ScoringCertifier)
        certifier = scorer
        verify += certifier.totals.verify_passes
        mined += certifier.totals.miner_passes
        value_passes += certifier.totals.value_passes
        sv, sm = steady_cost(certifier)
        steady_v += sv
        steady_m += sm
        for scoring in certifier.rounds:
            for m, mr in scoring.miners.items():
                if m in keys.values() and mr.verification is not None:
                    honest_verify += mr.verification.cost.forward_passes
                    honest_mined += mr.verification.cost.miner_forward_passes
        replayed = replay_loss(net, swarm, None)
        for spec in specs:
            _, without, seconds = run(net, [s for s in specs if s is not spec])
            loo[spec.name] += (without - full_loss) / n
            replay[spec.name] += (replay_loss(net, swarm, keys[spec.name]) - replayed) / n
            loo_s += seconds
    assert certifier is not None
    # Honest miners' held reward is deferred, not lost (their next audit releases it), so
    # money is compared with contribution over paid + owed; the paid-only figure is reported.
    rho = spearman([rewards[s.name] for s in specs], [loo[s.name] for s in specs])
    rho_paid = spearman([paid[s.name] for s in specs], [loo[s.name] for s in specs])
    rho_paid_replay = spearman([paid[s.name] for s in specs], [replay[s.name] for s in specs])
    rho_replay = spearman([rewards[s.name] for s in specs], [replay[s.name] for s in specs])
    recog = recognition(config, args.quick)
    ratio = loss_ratio(config, specs, n)
    equivocation = equivocator()
    by_kind["equivocator"] = equivocation["reward_share"]
    damage = outwaiting_loss_ratio(config, specs)
    for kind, row in damage["per_attacker"].items():
        by_kind[kind] = row["reward_share"]  # its own network's (see all_attackers)
    result: dict[str, Any] = {
        "attacker_reward_share": by_kind,
        "spearman_reward_vs_loo": rho,
        "rounds_to_recognize_new_miner": recog["rounds"],
        "verification_cost_fraction": verify / mined if mined else 0.0,
        "loss_ratio_30pct_attackers": ratio["ratio"],
        "details": {
            "rounds": config.rounds, "codec": config.codec, "network_k": config.scalars,
            "repeats": n, "trainable": config.trainable,
            "honest_reward_share": rewards, "honest_paid_share": paid,
            "spearman_paid_only_vs_loo": rho_paid,
            "spearman_paid_only_vs_replay_loo": rho_paid_replay,
            "attacker_owed_share": owed_by_kind, "loo_contribution": loo,
            "replay_loo_contribution": replay, "spearman_reward_vs_replay_loo": rho_replay,
            "honest_total_share": sum(rewards.values()),
            "verification_cost_fraction_honest": honest_verify / honest_mined
            if honest_mined else 0.0,
            "steady_fo_audit_probability": certifier.policy.trust.fo_audit_probability,
            "verification_cost_fraction_past_probation": steady_v / steady_m
            if steady_m else 0.0,
            "audit_budget_per_round": certifier.policy.trust.audit_budget,
            "outwaiting_loss_ratio": damage,
            "value_forward_passes_per_miner_pass": value_passes / mined if mined else 0.0,
            "final_val_loss_full_network": sum(full_losses) / n,
            "recognition": recog, "loss_ratio": ratio, "equivocator": equivocation,
            "time_ratio_to_full_run": {"loo_reruns": loo_s / full_s,
                                       "outwaiting_loss_ratio": damage["seconds"] / full_s,
                                       "recognition": recog["seconds"] / full_s,
                                       "loss_ratio": ratio["seconds"] / full_s},
            "full_run_seconds": full_s,
        },
        "validator_attacks": validator_attacks.measure(),
    }
    if args.network_attacks or (args.network_attacks is None and not args.quick):
        from bench.incentives_network import run_all

        network = run_all(args.quick)
        result["network_attackers"] = network
        for kind, figures in network.items():
            result["attacker_reward_share"][kind] = figures["attacker_reward_share"]
    console.print(table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"JSON written to {args.json}")
    return result


def table(result: dict[str, Any]) -> Table:
    t = Table(title="seedswarm incentives")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("goal", justify="right")
    t.add_column("met")
    for kind, share in sorted(result["attacker_reward_share"].items()):
        t.add_row(f"reward share: {kind}", f"{share:.4f}", "<= 0.01", _met(share <= 0.01))
    rho = result["spearman_reward_vs_loo"]
    t.add_row("Spearman reward vs LOO (re-run)", f"{rho:.3f}", ">= 0.9", _met(rho >= 0.9))
    rp = result["details"]["spearman_paid_only_vs_loo"]
    t.add_row("  paid only (owed FO reward left out)", f"{rp:.3f}", "", "")
    rr = result["details"]["spearman_reward_vs_replay_loo"]
    t.add_row("Spearman reward vs LOO (replay)", f"{rr:.3f}", ">= 0.9", _met(rr >= 0.9))
    rounds = result["rounds_to_recognize_new_miner"]
    t.add_row("rounds to recognize a newcomer", str(rounds), "<= 5",
              _met(rounds is not None and rounds <= 5))
    v = result["verification_cost_fraction"]
    t.add_row("verification / miner compute", f"{v:.3f}", "<= 0.10", _met(v <= 0.10))
    vh = result["details"]["verification_cost_fraction_honest"]
    t.add_row("  of which on honest miners", f"{vh:.3f}", "", "")
    vs = result["details"]["verification_cost_fraction_past_probation"]
    t.add_row("  past probation (standing cost)", f"{vs:.3f}", "<= 0.10", _met(vs <= 0.10))
    d = result["details"]["outwaiting_loss_ratio"]
    t.add_row("loss ratio, outwaiting attackers", f"{d['ratio']:.4f}", "<= 1.01",
              _met(d["ratio"] <= 1.01))
    for kind, row in sorted(d["per_attacker"].items()):
        t.add_row(f"  {kind}: rounds certified, caught in", f"{row['certified_rounds']}, "
                  f"{row['caught_round']}", "", "")
    eq = result["details"].get("equivocator")
    if eq is not None:
        t.add_row("equivocator: finality stall (rounds)", str(eq["finality_stall_rounds"]),
                  "<= 1", _met(eq["finality_stall_rounds"] <= 1))
        t.add_row("equivocator: honest slots lost", f"{eq['honest_certificate_slots_lost']:.4f}",
                  "<= 0.01",
                  _met(eq["honest_certificate_slots_lost"] <= 0.01))
    r = result["loss_ratio_30pct_attackers"]
    t.add_row("loss ratio, 30% attackers", f"{r:.4f}", "<= 1.02", _met(r <= 1.02))
    _validator_rows(t, result["validator_attacks"])
    if "network_attackers" in result:
        from bench.incentives_network import add_rows

        add_rows(t, result["network_attackers"], shares=False)
    return t


def _validator_rows(t: Table, attacks: dict[str, Any]) -> None:
    for kind, r in attacks.items():
        fav, loss = r["favourite_gain"], r["honest_pay_loss"]
        t.add_row(f"{kind}: favourite's gain", f"{fav:.4f}", "<= 0.01", _met(fav <= 0.01))
        t.add_row(f"{kind}: honest pay lost", f"{loss:.4f}", "<= 0.01", _met(loss <= 0.01))
        t.add_row(f"  worst-hit honest miner (noise {r['honest_noise']:.2f})",
                  f"{r['worst_honest_miner_loss']:.4f}", "", "")


def _validator_attacks_only(console: Console, path: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"validator_attacks": validator_attacks.measure()}
    t = Table(title="seedswarm incentives: minority validator (40 % of the stake)")
    for column in ("metric", "value", "goal", "met"):
        t.add_column(column, justify="right" if column == "value" else "left")
    _validator_rows(t, result["validator_attacks"])
    console.print(t)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _met(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


if __name__ == "__main__":
    main()
