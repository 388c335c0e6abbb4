"""The audit policy against cheaters that outwait it (issue 15, items 7 and 8): a partial
fabricator that starts after its probation audit, and an always-round-up quantizer."""

from __future__ import annotations

import pytest

from seedswarm.sim.attackers import attacker_kind
from seedswarm.sim.swarm import Swarm, build_swarm, run_rounds
from tests.sim.helpers import tiny_config
from training.genesis import build_genesis
from validator.scorer import ScoringCertifier
from validator.trust import TrustPolicy


def attacked(kind: str, rounds: int, codec: str, network: int) -> tuple[Swarm, bytes]:
    extra = {"outer_lr": 0.05, "scalars": 32} if codec == "zo" else {"scalars": 256}
    config = tiny_config(miners=4, rounds=rounds, codec=codec, attackers=((kind, 1),),
                         network_id=f"audit-policy-{network}", **extra)
    swarm = build_swarm(config, build_genesis(config))
    run_rounds(swarm, rounds)
    (cheater,) = [m for m in swarm.miners if attacker_kind(m) == kind]
    return swarm, cheater.key.public.raw


def certifier(swarm: Swarm) -> ScoringCertifier:
    assert isinstance(swarm.certifier, ScoringCertifier)
    return swarm.certifier


def honest_never_fail(swarm: Swarm, cheater: bytes) -> None:
    for scoring in certifier(swarm).rounds:
        for miner, mr in scoring.miners.items():
            if miner != cheater and mr.verification is not None:
                assert mr.verification.verified is not False, mr.verification.reason


@pytest.mark.parametrize(("kind", "network"), [("fabricator-2", 0), ("fabricator-10", 2)])
def test_a_fabricator_that_outwaits_probation_is_not_paid(kind: str, network: int) -> None:
    # It passes its probation audit in round 0, then negates 2 % (10 %) of its scalars every
    # round from round 2 on. Under the old policy it was paid for every unaudited round (an
    # audit each 20 rounds): 2.7 % (7.0 %) of all rewards over these 12 rounds. Now what it
    # earns stays held until it passes another audit, which a fabricating round never does.
    swarm, cheater = attacked(kind, rounds=12, codec="fo", network=network)
    shares = certifier(swarm).reward_totals()
    assert shares.get(cheater.hex(), 0.0) <= 0.01
    assert sum(v for k, v in shares.items() if k != cheater.hex()) >= 0.99
    honest_never_fail(swarm, cheater)


def test_the_zo_rounding_check_catches_an_always_round_up_quantizer() -> None:
    # Several networks (other seeds, data and models): caught in its first round every time,
    # never paid, and no honest miner ever fails the narrower band.
    for network in range(3):
        swarm, cheater = attacked("round-up", rounds=3, codec="zo", network=network)
        first = certifier(swarm).rounds[0].miners[cheater]
        assert first.verification is not None and first.verification.verified is False
        assert certifier(swarm).reward_totals().get(cheater.hex(), 0.0) == 0.0
        proofs = certifier(swarm).rounds[0].proofs
        assert [p.envelope for p in proofs] and all(p.indices for p in proofs)
        honest_never_fail(swarm, cheater)


def test_audit_odds_rise_with_the_reward_at_stake() -> None:
    policy = TrustPolicy()
    assert policy.fo_probability(0.0) == policy.fo_probability(0.05) == 0.05
    assert policy.fo_probability(0.4) == pytest.approx(0.2)
    assert policy.fo_probability(1.0) == 0.5
    assert TrustPolicy(audit_budget=3.0).fo_probability(0.5) == 1.0
