"""The validator's scoring pipeline: one round end to end on a real model, and the rules it
is made of (trust of unaudited work, capped ratings, clamps against Templar's exploits)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import pytest

from node.honest_miner import HonestMiner
from protocol.codecs import Codec, contribution_updates
from protocol.errors import ConfigError
from protocol.messages import WEIGHT_ONE_PPB, CertEntry, Contribution, RoundCertificate
from protocol.signing import open_envelope, seal
from seedswarm.sim.swarm import Swarm, build_swarm, miner_key, run_rounds
from tests.sim.helpers import tiny_config
from training.genesis import build_genesis
from validator import filters as filters_module
from validator.certificate import Dispute, ReviewContext, check_entries
from validator.filters import FilterContext, RoundWindow
from validator.gates import slash
from validator.liveness import decayed_score
from validator.loss_delta import LossDelta, LossMeasurement
from validator.outcome import RoundOutcome, passes_gates
from validator.pipeline import ScoringPipeline
from validator.ratings import Rating
from validator.reward import indicator_factor, rating_factor, reward_score
from validator.scorer import ScoringCertifier
from validator.trust import (
    AuditRecord,
    TrustPolicy,
    after_audit,
    audit_policy,
    deterrence_ratio,
    is_banned,
    passes_verification,
)
from validator.verification import VerificationPolicy
from validator.weights import epoch_weights

GOOD = LossDelta(own=0.03, random=0.02, valid=True)


def scored_swarm(rounds: int, **overrides: object) -> Swarm:
    config = tiny_config(miners=4, rounds=rounds, scalars=256, **overrides)
    swarm = build_swarm(config, build_genesis(config))
    run_rounds(swarm, rounds)
    return swarm


def certifier_of(swarm: Swarm) -> ScoringCertifier:
    assert isinstance(swarm.certifier, ScoringCertifier)
    return swarm.certifier


def test_honest_rounds_are_certified_with_capacity_weights_and_explained() -> None:
    swarm = scored_swarm(3)
    certifier = certifier_of(swarm)
    first = certifier.rounds[0]
    # Round 0: every miner is a newcomer, so every FO contribution is audited (probation).
    assert all(m.verification is not None and m.verification.verified for m in
               first.miners.values())
    for scoring in certifier.rounds:
        assert scoring.entries, "honest contributions must be certified"
        assert sum(e.weight_ppb for e in scoring.entries) == WEIGHT_ONE_PPB
        assert [e.sender for e in scoring.entries] == sorted(e.sender for e in scoring.entries)
        for miner, mr in scoring.miners.items():
            receipt = mr.receipt
            assert receipt.miner == miner and receipt.round_index == scoring.round_index
            assert receipt.weight_ppb == mr.weight_ppb
            if mr.weight_ppb:
                assert receipt.reason.startswith("scored") and receipt.loss_delta_random != 0.0
    # Later rounds: trusted miners' unaudited contributions pass the gate.
    later = [m for r in certifier.rounds[1:] for m in r.miners.values()]
    assert any(m.outcome.verified is None and m.outcome.trusted and m.weight_ppb for m in later)
    # The cascade credits contributions certified in earlier rounds.
    assert any(m.outcome.cascade is not None for m in later)
    # Receipts are queryable per miner and sealed by the validator.
    key = swarm.miners[0].key.public.raw
    assert [r.round_index for r in swarm.receipts(key)] == [0, 1, 2]
    assert len(certifier.sealed[key]) == 3


def test_k_is_a_maximum_and_each_contribution_is_normalized_by_its_own_k() -> None:
    config = tiny_config(miners=3, rounds=3, scalars=256)
    genesis = build_genesis(config)
    honest = [HonestMiner(miner_key(0, i)) for i in range(2)]
    honest.append(HonestMiner(miner_key(0, 2), scalars=64))
    swarm = build_swarm(config, genesis, honest=honest)
    run_rounds(swarm, 3)
    small = honest[2].key.public.raw
    counts = {c.sender: c.scalars for entries in swarm.log for c, _ in entries}
    assert counts[small] == 64 and counts[honest[0].key.public.raw] == 256
    # Inverse-variance weights: proportional to K within every certified round.
    rounds = [dict((c.sender, (c.scalars, w)) for c, w in entries) for entries in swarm.log]
    both = [r for r in rounds if small in r and len(r) > 1]
    assert both
    for r in both:
        total = sum(k for k, _ in r.values())
        for k, w in r.values():
            assert w == pytest.approx(k / total, abs=1e-8)
    # ZO: the coefficient divides by the contribution's own K.
    (update,) = contribution_updates(Codec.ZO, [7], [2.0], (), lr=0.5, weight=1.0)
    assert update.coeff == pytest.approx(-1.0)
    small_k = contribution_updates(Codec.ZO, [7, 8], [2.0, 2.0], (), lr=0.5, weight=1.0)
    assert small_k[0].coeff == pytest.approx(-0.5)


def test_garbage_and_wrong_round_messages_are_refused_with_receipts() -> None:
    config = tiny_config(miners=3, rounds=1, scalars=64)
    swarm = build_swarm(config, build_genesis(config))
    certifier = certifier_of(swarm)
    ctx = swarm.context()
    honest = swarm.miners[0]
    assert isinstance(honest, HonestMiner)
    good = honest.work(ctx)
    assert honest.last is not None
    other = swarm.miners[1]
    wrong_round = dataclasses.replace(honest.last.contribution, round_index=5, sequence=99,
                                      sender=other.key.public.raw)
    stranger = miner_key(7, 7)
    foreign = dataclasses.replace(honest.last.contribution, sender=stranger.public.raw)
    entries = certifier.certify_envelopes(
        ctx, [b"garbage", good, seal(wrong_round, other.key), seal(foreign, stranger)])
    scoring = certifier.rounds[-1]
    assert scoring.refused == 2  # garbage, and a sender nobody registered: no receipt
    assert {c.sender for c, _ in entries} <= {honest.key.public.raw}
    assert scoring.miners[honest.key.public.raw].receipt.filters_passed
    assert scoring.counters.as_dict()["malformed"] == 1
    refused = scoring.miners[other.key.public.raw]
    assert refused.receipt.filters_passed is False and refused.weight_ppb == 0
    assert "wrong_round" in refused.receipt.reason


def test_failed_audit_bans_forfeits_the_epoch_and_never_goes_negative() -> None:
    swarm = scored_swarm(3, attackers=(("lazy", 1),))
    certifier = certifier_of(swarm)
    lazy = swarm.miners[-1].key.public.raw
    book = certifier.pipeline.book(lazy)
    assert book.audits.failed_round == 0 and book.epoch_score == 0.0
    banned = certifier.rounds[1].miners[lazy]
    assert banned.verification is None and banned.reward == 0.0  # no compute spent on it
    assert all(score >= 0.0 for score in certifier.pipeline.epoch_scores().values())


def test_pipeline_state_survives_a_restart() -> None:
    swarm = scored_swarm(2)
    pipeline = certifier_of(swarm).pipeline
    saved = pipeline.state_to_json()
    fresh = ScoringPipeline(pipeline.network, validator=pipeline.validator, secret=pipeline.secret)
    fresh.load_state(saved)
    assert fresh.books == pipeline.books
    assert [(r, [(c, w) for c, w in e]) for r, e in fresh.history] == \
        [(r, [(c, w) for c, w in e]) for r, e in pipeline.history]
    assert fresh.state_to_json() == saved


# --------------------------------------------------------------------------- rules


def test_unaudited_work_counts_only_from_trusted_miners() -> None:
    policy = TrustPolicy()
    newcomer = AuditRecord()
    assert not passes_verification(None, newcomer, 3, policy)
    probation = audit_policy(VerificationPolicy(), newcomer, policy, "fo")
    assert probation.fo_audit_probability == 1.0 and probation.sample_size(256) == 114
    trusted = after_audit(newcomer, True, 3)
    assert passes_verification(None, trusted, 4, policy)
    assert audit_policy(VerificationPolicy(), trusted, policy, "fo").fo_audit_probability == 0.05
    caught = after_audit(trusted, False, 5)
    assert is_banned(caught, 5 + policy.ban_rounds - 1, policy)
    assert not passes_verification(None, caught, 6, policy)
    # After the ban it serves its probation again: nothing unaudited counts until it passes.
    assert not is_banned(caught, 5 + policy.ban_rounds, policy)
    assert not passes_verification(None, caught, 5 + policy.ban_rounds, policy)
    assert not passes_verification(False, trusted, 4, policy)


def test_expected_penalty_exceeds_the_gain() -> None:
    assert deterrence_ratio(TrustPolicy()) >= 10.0
    with pytest.raises(ConfigError):
        TrustPolicy(fo_audit_probability=0.01, ban_rounds=50)


def test_rating_is_capped_so_drift_cannot_lock_newcomers_out() -> None:
    newcomer = Rating(25.0, 25.0 / 3)
    assert rating_factor(newcomer) == pytest.approx(0.5)
    assert rating_factor(Rating(40.0, 3.0)) == rating_factor(Rating(90.0, 1.0)) == 1.0
    assert rating_factor(Rating(1.0, 4.0)) == 0.0  # ordinal -11: keeps ranking last


def test_negative_times_negative_is_never_a_reward() -> None:
    bad = RoundOutcome(True, True, True, LossDelta(-0.2, -0.1, True), 0.5, -0.9)
    losing = Rating(mu=0.0, sigma=8.0)  # ordinal -24
    assert reward_score(bad, -0.3, losing) == 0.0
    assert reward_score(bad, 0.3, losing) == 0.0
    good = RoundOutcome(True, True, True, GOOD, -0.1, -0.9)
    assert reward_score(good, 0.3, Rating(30.0, 1.0)) == 0.0  # indicator -0.9 clamps to 0
    assert epoch_weights({"neg": -5.0, "pos": 1.0}) == {"pos": WEIGHT_ONE_PPB}


def test_slashing_never_raises_a_score() -> None:
    for score in (-3.0, -0.1, 0.0, 0.4, math.nan):
        for factor in (0.0, 0.5, 0.75, 1.0):
            assert slash(score, factor) <= max(0.0, score if math.isfinite(score) else 0.0)
        for missed in (1, 5, 20):
            assert decayed_score(score, missed) <= max(0.0, score if score == score else 0.0)
    assert epoch_weights({"slashed": slash(-2.0, 0.75), "honest": 0.1}) == {
        "honest": WEIGHT_ONE_PPB}


def test_gates_need_verification_or_trust() -> None:
    unaudited = RoundOutcome(True, None, True, GOOD, -0.1, 0.6)
    assert not passes_gates(unaudited)
    assert passes_gates(dataclasses.replace(unaudited, trusted=True))
    assert not passes_gates(dataclasses.replace(unaudited, verified=False, trusted=True))
    assert not passes_gates(dataclasses.replace(unaudited, synced=False, trusted=True))


# --------------------------------------------------------------------------- review findings


def test_contributions_the_validator_would_not_pay_are_rejected_for_review() -> None:
    swarm = scored_swarm(2, attackers=(("lazy", 1), ("free-rider", 1)))
    for scoring in certifier_of(swarm).rounds:
        certified = {e.contribution_digest for e in scoring.entries}
        assert certified and not certified & scoring.rejected
        for mr in scoring.miners.values():
            if mr.digest is not None and mr.weight_ppb == 0 and mr.reward <= 0.0:
                assert mr.digest in scoring.rejected, mr.receipt.reason
        # A leader including any of them is disputed by this validator.
        seen = {mr.digest: mr.contribution for mr in scoring.miners.values()
                if mr.digest is not None and mr.contribution is not None}
        for digest in scoring.rejected & seen.keys():
            c = seen[digest]
            entry = CertEntry(c.sender, digest, WEIGHT_ONE_PPB)
            cert = RoundCertificate("n", scoring.round_index, bytes(32), 1, bytes(32),
                                    (entry,), bytes(32))
            ctx = ReviewContext("n", scoring.round_index, bytes(32), [(bytes(32), 1)], 4, seen,
                                rejected=scoring.rejected)
            assert check_entries(cert, ctx).dispute is Dispute.REJECTED_CONTRIBUTION
    lazy = swarm.miners[-2].key.public.raw
    first = certifier_of(swarm).rounds[0].miners[lazy]
    assert first.digest in certifier_of(swarm).rounds[0].rejected  # failed its audit


def test_only_objective_failures_are_invalid_for_review() -> None:
    swarm = scored_swarm(2, attackers=(("lazy", 1), ("free-rider", 1)))
    lazy, rider = (m.key.public.raw for m in swarm.miners[-2:])
    for scoring in certifier_of(swarm).rounds:
        assert scoring.invalid <= scoring.rejected
        for miner, mr in scoring.miners.items():
            caught = mr.verification is not None and mr.verification.penalize
            if mr.digest is not None and caught:
                assert mr.digest in scoring.invalid, mr.receipt.reason
            elif mr.digest is not None and mr.filter.value == "passed":
                # unpaid (for this validator's random data) is not a fact other validators share
                assert mr.digest not in scoring.invalid or miner == lazy, mr.receipt.reason
    first = certifier_of(swarm).rounds[0]
    assert first.miners[lazy].digest in first.invalid  # it failed its audit: a fact
    rider_digest = first.miners[rider].digest
    assert rider_digest in first.rejected and rider_digest not in first.invalid  # unpaid only


class _CascadeOnlyOracle:
    """The round's model as the cascade sees it: a fixed, helpful influence for earlier work
    (the tiny simulated model is too noisy to guarantee a helpful one)."""

    def __init__(self, influence: float, loss: float) -> None:
        self.influence_value, self.loss = influence, loss

    def influence(self, contribution: Contribution, weight: float) -> float:
        return self.influence_value * weight

    def validation_loss(self) -> float:
        return self.loss

    def num_train_samples(self) -> int:
        raise AssertionError("nothing arrived: nothing is measured")

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        raise AssertionError("nothing arrived: nothing is verified")

    def assigned_loss(self, contribution: Contribution) -> float:
        raise AssertionError("nothing arrived: nothing is verified")

    def measure(self, contribution: Contribution, weight: float,
                random_indices: Sequence[int]) -> LossMeasurement:
        raise AssertionError("nothing arrived: nothing is measured")


def test_cascade_credit_accrues_when_the_miner_sends_nothing() -> None:
    config = tiny_config(miners=3, rounds=1, scalars=64)
    swarm = build_swarm(config, build_genesis(config))
    swarm.run_round()
    pipeline = certifier_of(swarm).pipeline
    (contribution, weight), *_ = swarm.log[0]
    book = pipeline.book(contribution.sender)
    before = book.held  # cascade credit is held like any reward until a passed audit
    filter_ctx = FilterContext(pipeline.network, RoundWindow(1, 0.0, 10.0), bytes(32),
                               {contribution.sender}, num_blocks=1)
    scoring = pipeline.score_round([], filter_ctx, _CascadeOnlyOracle(-0.1, 2.0))
    assert contribution.sender not in scoring.miners  # nothing received from it this round
    value = pipeline.policy.match.influence_weight * 0.1 * weight * 0.5 / 2.0  # decay 1/2
    rating = pipeline.ratings.get(contribution.sender.hex())
    expected = value * rating_factor(rating) * indicator_factor(book.indicator)
    assert expected > 0.0
    assert book.held == pytest.approx(before + expected)
    # A banned miner earns nothing from the cascade either.
    pipeline.observe_certified(1, [(contribution, weight)])
    book.audits = AuditRecord(passed=0, failed_round=1)
    banned_before = book.held
    pipeline.score_round([], dataclasses.replace(filter_ctx, window=RoundWindow(2, 0.0, 10.0)),
                         _CascadeOnlyOracle(-0.1, 2.0))
    assert book.held == banned_before


def test_failed_arrivals_are_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(miners=2, rounds=1, scalars=64)
    swarm = build_swarm(config, build_genesis(config))
    certifier = certifier_of(swarm)
    ctx = swarm.context()
    honest = swarm.miners[0]
    assert isinstance(honest, HonestMiner)
    honest.work(ctx)
    assert honest.last is not None
    stale = dataclasses.replace(honest.last.contribution, base_model_hash=b"\x07" * 32)
    opened: list[bytes] = []
    real = filters_module.open_envelope

    def counting(raw: bytes, **kwargs: Any) -> Any:
        opened.append(bytes(raw))
        return real(raw, **kwargs)

    monkeypatch.setattr(filters_module, "open_envelope", counting)
    certifier.certify_envelopes(ctx, [seal(stale, honest.key)])
    assert len(opened) == 1
    miner = certifier.rounds[-1].miners[honest.key.public.raw]
    assert miner.filter.value == "out_of_sync"  # the failure still names its sender
    assert certifier.rounds[-1].rejected  # and its digest is on the rejected list


def test_an_audit_on_demand_establishes_the_fact_a_reviewer_disputes() -> None:
    # A reviewer that left a contribution out unaudited (no value on its own data) audits it
    # in full before judging a certificate that includes it.
    swarm = scored_swarm(1, attackers=(("noise", 1),))
    certifier = certifier_of(swarm)
    ctx = swarm.context()
    published = [m.work(ctx) for m in swarm.miners]
    contributions = [open_envelope(raw, network_id=ctx.network_id, expect=Contribution).message
                     for raw in published]
    passed = certifier.audit(ctx, contributions)
    noise = swarm.miners[-1].key.public.raw
    verdicts = {c.sender: ok for c, ok in zip(contributions, passed, strict=True)}
    assert verdicts.pop(noise) is False
    assert all(verdicts.values())  # honest work passes a full audit
    book = certifier.pipeline.book(noise)
    assert book.epoch_score == 0.0 and book.audits.failed_round == ctx.round_index  # a failure
