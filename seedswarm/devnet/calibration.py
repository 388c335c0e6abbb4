"""How long a devnet round must be on this machine, measured rather than guessed.

Before the devnet fixes its schedule it runs, in its own process and under whatever load the
machine has right now, exactly the work of one round: one honest miner's contribution and
one validator's scoring of a full round of them (and the apply every node does). The round
is then long enough for that work with a safety factor, scaled by how many node processes will
share each core. A fixed 3 s round held on an idle machine and failed on a busy one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from node.honest_miner import HonestMiner
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.signing import open_envelope
from runtime.model_state import ModelState
from seedswarm.devnet.devnet_genesis import MIN_ROUND_S
from training.replica import Replica
from training.work import WorkConfig
from validator.scorer import ScoringCertifier

SAFETY = 3.0
"""Headroom over the measured work: other processes, the event loop, garbage collection."""


@dataclass(frozen=True)
class RoundCost:
    """Seconds one round's work took here: a miner's contribution, the validator's scoring of
    all contributions, and one apply of the round."""

    work_s: float
    score_s: float
    apply_s: float

    def round_length(self, processes: int, work_fraction: float, cores: int) -> int:
        """Whole seconds per round, with `processes` node processes sharing `cores` cores:
        the miners all work at once (slowed by sharing the cores) and must finish inside the
        work window; then the validator scores the round and every node applies it, before
        the round ends (validators score as soon as every contribution is in)."""
        miners_s = self.work_s * max(1.0, processes / max(1, cores))
        round_s = miners_s + self.score_s + self.apply_s
        need = SAFETY * max(miners_s / work_fraction, round_s)
        return max(MIN_ROUND_S, math.ceil(need))


def measure_round(network: NetworkConfig, base_checkpoint: Path, miners: int) -> RoundCost:
    """Run one round's work of a network of `miners` honest miners on the genesis model, on
    one torch thread like every node process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(network, base_checkpoint, miners)
    finally:
        torch.set_num_threads(threads)


def _measure(network: NetworkConfig, base_checkpoint: Path, miners: int) -> RoundCost:
    state = ModelState.from_base(network, base_checkpoint)
    work = WorkConfig.of(network)
    keys = [NodeKey.generate() for _ in range(max(1, miners))]
    ctx = state.round_context([k.public.raw for k in keys], work)
    HonestMiner(keys[0]).work(ctx)  # the first run pays for allocations: not a round's cost
    started = time.perf_counter()
    envelopes = [HonestMiner(k).work(ctx) for k in keys]
    work_s = (time.perf_counter() - started) / len(keys)
    scorer = ScoringCertifier(network, NodeKey.generate())
    started = time.perf_counter()
    scoring = scorer.score_envelopes(ctx, envelopes)
    score_s = time.perf_counter() - started
    entries = scoring.certified or tuple(
        (open_envelope(e, network_id=network.network_id, expect=Contribution).message,
         1.0 / len(envelopes))
        for e in envelopes)
    replica = state.replica
    copy = Replica.detached_copy(replica.named, replica.rule, replica.round_index)
    started = time.perf_counter()
    copy.apply_round(entries)
    return RoundCost(work_s, score_s, time.perf_counter() - started)


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
