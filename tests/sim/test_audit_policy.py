"""The audit policy against cheaters that outwait it (issue 15, items 7 and 8): a partial
fabricator that starts after its probation audit, and an always-round-up quantizer."""

from __future__ import annotations

import pytest

from protocol.domain_types import PublicKey
from seedswarm.sim.attackers import attacker_kind
from seedswarm.sim.swarm import Swarm, build_swarm, run_rounds
from tests.sim.helpers import tiny_config
from training.genesis import build_genesis
from validator.scorer import ScoringCertifier
from validator.trust import TrustPolicy


def attacked(kind: str, rounds: int, codec: str, network: int) -> tuple[Swarm, PublicKey]:
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


def honest_never_fail(swarm: Swarm, cheater: PublicKey) -> None:
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
    # Nothing is lost or invented by holding: every miner's earned reward is either released
    # (what the epoch pays) or still held; only a trusted miner's unaudited rounds are held.
    scorer = certifier(swarm)
    for miner, book in scorer.pipeline.books.items():
        if miner == cheater:
            continue
        earned = sum(r.miners[miner].reward for r in scorer.rounds if miner in r.miners)
        released = sum(r.released.get(miner, 0.0) for r in scorer.rounds)
        assert released + book.held == pytest.approx(earned)
        assert book.epoch_score == pytest.approx(released)
    unaudited = [(r, m) for r in scorer.rounds for m, mr in r.miners.items()
                 if mr.verification is not None and mr.verification.verified is None
                 and mr.reward > 0.0]
    assert unaudited and all(m not in r.released for r, m in unaudited)


def test_the_live_ledger_pays_released_score_and_forfeits_on_a_failed_audit() -> None:
    from validator.service.ledger import Ledger

    ledger = Ledger()
    ledger.add_scores(3, 60, {"aa": 1.0, "bb": 2.0})
    ledger.add_scores(3, 61, {"bb": 1.0}, forfeited=["aa"])
    assert ledger.epochs[3].scores == {"bb": 3.0}


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
    assert policy.fo_probability(0.5) == pytest.approx(0.2)
    assert policy.fo_probability(1.0) == pytest.approx(0.4)
    assert TrustPolicy(audit_budget=3.0).fo_probability(0.5) == 1.0


def test_an_fo_round_up_quantizer_fails_its_probation_audit_on_rounding_bias() -> None:
    # FO recomputation is not bit-exact, so each rounded-up scalar stays inside its band; the
    # sample's count of upward roundings is what gives it away (validator.verification's bias
    # test): caught at its probation audit, never paid, no honest miner ever flagged.
    for network in range(3):
        swarm, cheater = attacked("round-up", rounds=3, codec="fo", network=network)
        first = certifier(swarm).rounds[0].miners[cheater]
        assert first.verification is not None and first.verification.verified is False
        assert "rounding biased upward" in first.verification.reason or \
            first.verification.mismatches
        assert certifier(swarm).reward_totals().get(cheater.hex(), 0.0) == 0.0
        honest_never_fail(swarm, cheater)
