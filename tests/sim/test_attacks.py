"""Every attack of the library against the validator pipeline: refused or weighted ~0, paid
nothing, explained in its receipts, and the model still learns."""

from __future__ import annotations

import pytest

from protocol.errors import ConfigError
from seedswarm.sim.attackers import ATTACKS, OUTWAITING, attacker_kind, parse_attackers
from seedswarm.sim.swarm import Swarm, build_swarm, run_rounds
from tests.sim.helpers import tiny_config
from training.genesis import build_genesis
from validator.scorer import ScoringCertifier

# What a receipt may say when a cheater earns nothing (validator.reward.explain_reward and the
# pipeline's own reasons).
REFUSALS = ("verification", "banned", "no measured improvement", "probation")


def attacked_swarm(kind: str, count: int, rounds: int, codec: str = "fo") -> tuple[Swarm, float]:
    # FO with K = 256 of d = 14,816: enough signal per round that 4 honest miners learn fast.
    extra = {"outer_lr": 0.05, "scalars": 32} if codec == "zo" else {"scalars": 256}
    config = tiny_config(miners=4, rounds=rounds, codec=codec, attackers=((kind, count),),
                         **extra)
    swarm = build_swarm(config, build_genesis(config))
    initial = swarm.validation_loss()
    run_rounds(swarm, rounds)
    return swarm, initial


def check_defence(swarm: Swarm, initial: float, kind: str) -> None:
    certifier = swarm.certifier
    assert isinstance(certifier, ScoringCertifier)
    shares = certifier.reward_totals()
    cheaters = [m for m in swarm.miners if attacker_kind(m) == kind]
    assert cheaters
    cheater_keys = {m.key.public.raw for m in cheaters}
    share = sum(shares.get(k.hex(), 0.0) for k in cheater_keys)
    assert share <= 0.01, (kind, share)
    # Never certified with any weight.
    certified = {c.sender for entries in swarm.log for c, _ in entries}
    assert not certified & cheater_keys
    # Every round it sent something, its receipt says why it earned nothing.
    for key in cheater_keys:
        receipts = swarm.receipts(key)
        assert receipts, kind
        for receipt in receipts:
            assert receipt.weight_ppb == 0
            assert any(word in receipt.reason for word in REFUSALS), receipt.reason
    # The honest miners carried the model.
    assert initial - swarm.validation_loss() > (0.3 if swarm.work.codec.value == "fo" else 0.1)
    honest_share = sum(v for k, v in shares.items() if bytes.fromhex(k) not in cheater_keys)
    assert honest_share == pytest.approx(1.0)


# The attackers that outwait probation are honest at first: tests/sim/test_audit_policy.py.
FIRST_ROUND = sorted(set(ATTACKS) - set(OUTWAITING))


@pytest.mark.parametrize("kind", FIRST_ROUND)
def test_attack_is_refused_and_unpaid(kind: str) -> None:
    count = 2 if kind == "sybil" else 1  # a sybil of one identity is an honest miner
    # Three rounds: the desynced attacker (lag 2) sends its first contribution in round 2.
    swarm, initial = attacked_swarm(kind, count, rounds=3)
    check_defence(swarm, initial, kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["copycat", "noise", "scaled", "sign-flip", "lazy", "sybil"])
def test_attack_is_refused_under_zeroth_order(kind: str) -> None:
    swarm, initial = attacked_swarm(kind, 2 if kind == "sybil" else 1, rounds=4, codec="zo")
    check_defence(swarm, initial, kind)


def test_attacks_that_change_scalars_are_caught_by_recomputation() -> None:
    # Lazy work is useful work (on the wrong data): it scores a positive value, so it is
    # audited on probation, fails, and is banned from then on.
    swarm, _ = attacked_swarm("lazy", 1, rounds=2)
    (cheater,) = [m for m in swarm.miners if attacker_kind(m) == "lazy"]
    first, second = swarm.receipts(cheater.key.public.raw)
    assert first.verified is False and "failed verification" in first.reason
    assert "banned after a failed audit in round 0" in second.reason
    # Poison is never paid, so it is not worth an audit: its value alone keeps it out.
    swarm, _ = attacked_swarm("sign-flip", 1, rounds=2)
    (flipper,) = [m for m in swarm.miners if attacker_kind(m) == "sign-flip"]
    for receipt in swarm.receipts(flipper.key.public.raw):
        assert receipt.weight_ppb == 0 and receipt.loss_delta_random < 0.0


@pytest.mark.slow
def test_all_attackers_at_once_with_honest_majority_still_learn() -> None:
    config = tiny_config(miners=6, rounds=4, scalars=256,
                         attackers=tuple((k, 2 if k == "sybil" else 1) for k in FIRST_ROUND))
    swarm = build_swarm(config, build_genesis(config))
    initial = swarm.validation_loss()
    run_rounds(swarm, 4)
    for kind in FIRST_ROUND:
        check_defence(swarm, initial, kind)


def test_parse_attackers() -> None:
    assert parse_attackers("copycat=2, noise=1,sybil") == (
        ("copycat", 2), ("noise", 1), ("sybil", 1))
    assert parse_attackers("") == ()
    for bad in ("teleport=1", "noise=0", "noise=x"):
        with pytest.raises(ConfigError):
            parse_attackers(bad)
