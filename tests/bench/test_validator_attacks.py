"""bench.validator_attacks: a 40 % validator against the settlement the chain runs (in-memory
chain). Fails on the settlements before issue 15's fixes: the late eviction handed the
favourite the whole miner pool, the burn cost honest miners about 40 % of their pay."""

from __future__ import annotations

from bench.validator_attacks import GOAL_HONEST_LOSS, measure, met


def test_a_minority_validator_moves_no_pay_through_eviction_or_burning() -> None:
    result = measure(trials=10)
    for attack in ("late-evicting validator", "burning validator"):
        r = result[attack]
        assert r["favourite_share"] == 0.0, attack
        assert r["honest_pay_loss"] <= GOAL_HONEST_LOSS, attack
        assert r["attacker_validator_reward_ratio"] == 0.0, attack  # it earns nothing itself
    assert met(result)


def test_with_honest_validators_in_agreement_an_attack_moves_nothing() -> None:
    for r in measure(trials=5, noise=0.0).values():
        assert (r["favourite_gain"], r["honest_pay_loss"], r["worst_honest_miner_loss"]) == (
            0.0, 0.0, 0.0)
