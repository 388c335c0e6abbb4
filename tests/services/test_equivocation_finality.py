"""Issue 15 (3): one equivocating miner must not stall finality.

Three validators of equal stake (two make a round final), two honest miners and a miner that
sends each validator its own valid version of its contribution
(seedswarm.devnet.equivocating_miner), over the real services. Before the fix every reviewer
disputed every other's certificate (`unknown_contribution`: a version it had not seen) and no
round ever became final. Now the
reviewer verifies what the leader's bundle carries, proves the equivocation from the two signed
versions, and every round is final within one round; the equivocator is excluded from every
final certificate and penalized by both validators, the honest miners are certified.
"""

from __future__ import annotations

from pathlib import Path

from seedswarm.devnet.equivocating_miner import VALIDATORS, run_equivocation
from seedswarm.devnet.spec import DevnetSpec
from tests.services.harness import measured_network

ROUNDS = 3


def test_an_equivocating_miner_is_excluded_and_finality_holds(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=VALIDATORS, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    network = measured_network(spec, base)
    run = run_equivocation(network, base, tmp_path, rounds=ROUNDS)

    assert run.stall_rounds <= 1, run  # no round waits for more than one fallback leader
    assert run.equivocator_certified == 0, run
    assert run.honest_certified > 0.0, run  # all of it on an idle machine (late work is not)
    assert run.proven_by == VALIDATORS, run  # each holds the proof and booked the penalty
    assert run.equivocator_reward_share == 0.0, run
    assert not any("unknown_contribution" in d for d in run.disputes), run.disputes
