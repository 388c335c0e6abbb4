"""The validator's one scoring code path: a round's raw messages in; outcomes, receipts, the
certified top-G and, at epoch ends, the weight vector out.

The simulator (``validator.scorer``) and the live validator service call the same
``ScoringPipeline.score_round``; everything that needs the model comes in through a
``RoundOracle`` the composition root builds (validator/ never imports node/).

One round, in order (each stage only sees what passed the previous one):

0. **Standing**: miners absent ``liveness.reset_after`` rounds are forgotten (rating,
   indicator, probation). **Cascade**: every contribution certified in the last
   ``cascade_hops`` rounds has its influence measured again on this round's model (hop ρ,
   weighted ``cascade_decay**ρ``); the credit joins its sender's value this round.
1. **Filters** (``validator.filters``): envelope and signature, registered sender, round,
   deadline, format (1..K scalars), exact sync, replay. One contribution per sender and round.
2. **Ban** (``validator.trust``): a miner that failed an audit within ``ban_rounds`` is refused
   before any compute is spent on it.
3. **Value** of each remaining contribution, applied alone at the weight it would get if all
   were certified (``probe_weights``: ``K_i / ΣK`` under the default ``SCALARS`` certificate
   mode): loss before/after on the sender's assigned data and on validator-chosen random data
   (``protocol.assignment.random_samples`` keyed by this validator's secret and the round, so
   nobody can fit them in advance), the own-beats-random indicator average, and the realized
   DICE influence ``∇L_valᵀ δ`` (two forward passes along the whole displacement: the cheap
   aggregated form). A few forward passes on small batches: cheap next to an FO audit.
4. **Verification** (``validator.verification``) of the contributions with a positive value
   (the others are never certified or paid, so checking them buys nothing): a secret sample of
   scalars recomputed; everything audited on probation, then FO with a probability rising
   with the miner's share of the round's reward at stake (``TrustPolicy.fo_probability``).
   Gate: audited-and-passed, or unaudited from a trusted miner. A failure bans the miner,
   forfeits its epoch score and yields a ``FabricationProof`` (``RoundScoring.proofs``).
5. **Match**: one Plackett-Luce match over the miners whose messages passed the filters,
   ranked by value (failed gates last); ratings persisted by ``RatingStore``.
6. **Reward**: ``validator.reward.reward_score`` (value x capped rating x indicator x
   liveness), **held** in the miner's book until it passes an audit (this round's or a later
   one); a passed audit releases everything held into the epoch score, the only score an
   epoch's weights pay. A failed audit forfeits both; what is still held when an epoch closes
   carries over to the next (``MinerBook.held``).
7. **Certificate**: the top-G gate-passing contributions with a positive reward, by value, with
   weights in ppb proportional to their scalar counts (inverse-variance: see
   ``WeightMode.SCALARS``) in canonical order; ``observe_certified`` must then be
   told what the round actually certified (the leader may be another validator).
8. **Receipts** for every registered miner that sent something, and at the last round of an
   epoch the epoch weight vector (``validator.weights``).

Topology: every node applies every certified contribution, so the mixing matrix is the uniform
all-to-all ``W = 11ᵀ/n`` and ``(W^ρ)[k, j] = 1/n`` for every hop: the whole displacement
reaches every replica and nothing decays through the topology. The cascade then reduces to
measuring ``∇L_val(θ_{t+ρ})ᵀ δ`` at later models (DICE Thm 1 with the path sum collapsed);
the ``cascade_decay`` weighting is a choice that keeps the reward dominated by the round's own
measurement (lower variance, prompt payment), not a property of the topology.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from protocol.assignment import random_samples
from protocol.domain_types import Digest, PublicKey
from protocol.encoding import decode, encode
from protocol.messages import WEIGHT_ONE_PPB, CertEntry, Contribution
from protocol.netconfig import NetworkConfig
from protocol.randomness import keyed_hash
from protocol.replay import ReplayGuard
from validator.certificate import Candidate, WeightMode, certificate_entries, select_top
from validator.filters import (
    FilterContext,
    FilterCounters,
    FilterReason,
    FilterVerdict,
    run_filters,
)
from validator.gates import nonnegative
from validator.liveness import Presence, liveness_factor, mark_seen, needs_reset
from validator.loss_delta import (
    LossDelta,
    loss_delta,
    own_beats_random,
    update_indicator,
)
from validator.outcome import RoundOutcome, match_score
from validator.pipeline_types import (
    Arrival,
    MinerBook,
    MinerRound,
    RoundOracle,
    RoundScoring,
    ScoringPolicy,
    WeightedContribution,
)
from validator.ratings import RatingStore
from validator.receipts import build_receipt
from validator.reward import (
    explain_reward,
    indicator_factor,
    rating_factor,
    reward_score,
)
from validator.trust import (
    AuditRecord,
    after_audit,
    audit_policy,
    is_banned,
    passes_verification,
)
from validator.verification import (
    VerificationPolicy,
    VerificationResult,
    fabrication_proof,
    verify_contribution,
    zo_noise_floor,
)
from validator.weights import epoch_weights

_PERSON_EVAL_DATA = b"ss:eval-data"
STATE_VERSION = 1

@dataclass
class _Pending:
    """A contribution between stages."""

    contribution: Contribution
    digest: Digest
    envelope: bytes
    verification: VerificationResult | None = None
    gate: bool = False
    delta: LossDelta | None = None
    influence: float | None = None
    banned: bool = False


class ScoringPipeline:
    """Scores rounds for one validator; holds its per-miner books, ratings and replay guard.

    ``secret`` (16-64 bytes) picks the scalars to audit and the random evaluation data; keep it
    private. ``sequence`` numbers the receipts (default: a counter persisted with the state).
    """

    def __init__(
        self,
        network: NetworkConfig,
        *,
        validator: PublicKey,
        secret: bytes,
        policy: ScoringPolicy | None = None,
        ratings: RatingStore | None = None,
        guard: ReplayGuard | None = None,
        sequence: Callable[[], int] | None = None,
    ) -> None:
        self.network = network
        self.validator = validator
        self.secret = secret
        self.policy = policy or ScoringPolicy()
        self.ratings = ratings if ratings is not None else RatingStore()
        self.guard = guard if guard is not None else ReplayGuard()
        self.books: dict[PublicKey, MinerBook] = {}
        self.history: deque[tuple[int, list[WeightedContribution]]] = deque()
        self._counter = 0
        self._sequence = sequence

    # ----------------------------------------------------------------------------- rounds

    def score_round(
        self, arrivals: Iterable[Arrival], ctx: FilterContext, oracle: RoundOracle
    ) -> RoundScoring:
        """Run stages 0-8 of the module docstring for the round ``ctx.window.round_index``."""
        t = ctx.window.round_index
        released_before = {m: b.epoch_score for m, b in self.books.items()}
        self._forget_absent(t)
        cascade = self._cascade(t, oracle)
        counters = FilterCounters()
        pending, failed, refused, rejected_digests = self._filter(arrivals, ctx, counters)
        for p in pending.values():
            p.banned = is_banned(self.book(p.contribution.sender).audits, t, self.policy.trust)
        measured = [p for p in pending.values() if not p.banned]
        self._measure(t, measured, oracle)
        validation_loss = oracle.validation_loss()
        raw = {p.contribution.sender: self._raw_value(p, cascade, validation_loss)
               for p in measured}
        at_stake = sum(v for v in raw.values() if v > 0.0)
        for p in measured:
            value = raw[p.contribution.sender]
            stake = value / at_stake if value > 0.0 else 0.0
            self._verify(t, p, oracle, value, stake)
        outcomes = self._outcomes(t, pending, failed, cascade)
        values = {m: match_score(o, validation_loss, self.policy.match)
                  for m, o in outcomes.items()}
        self.ratings.rate_round(t, {m.hex(): v for m, v in values.items()
                                    if m in pending and not pending[m].banned})
        rewards = self._rewards(outcomes, values)
        for p in pending.values():
            if p.verification is not None and p.verification.verified is True:
                self.book(p.contribution.sender).release()
        self._credit_absent_cascade(t, pending, cascade, validation_loss)
        entries = self._certificate(pending, values, rewards)
        ppb = {e.sender: e.weight_ppb for e in entries}
        miners = self._miner_rounds(t, pending, failed, outcomes, values, rewards, ppb)
        by_digest = {p.digest: p.contribution for p in pending.values()}
        certified = tuple((by_digest[e.contribution_digest], e.weight_ppb / WEIGHT_ONE_PPB)
                          for e in entries)
        verify = sum(p.verification.cost.forward_passes for p in pending.values()
                     if p.verification is not None)
        mined = sum(p.verification.cost.miner_forward_passes for p in pending.values()
                    if p.verification is not None)
        eligible = {p.digest for m, p in pending.items() if _eligible(p, rewards.get(m, 0.0))}
        rejected = frozenset({p.digest for p in pending.values()} - eligible) | rejected_digests
        caught = {p.digest for p in pending.values()
                  if p.banned or (p.verification is not None and p.verification.penalize)}
        invalid = frozenset(caught) | rejected_digests
        forfeited = frozenset(m for m, p in pending.items() if p.verification is not None
                              and p.verification.verified is False)
        released = {m: b.epoch_score - released_before.get(m, 0.0)
                    for m, b in sorted(self.books.items())
                    if m not in forfeited and b.epoch_score > released_before.get(m, 0.0)}
        proofs = tuple(proof for p in pending.values() if p.verification is not None
                       for proof in [fabrication_proof(p.envelope, p.verification)]
                       if proof is not None)
        return RoundScoring(t, miners, refused, tuple(entries), certified,
                            self._close_epoch(t), verify, mined, counters, rejected, invalid,
                            proofs, released, forfeited)

    def observe_certified(self, round_index: int, entries: Sequence[WeightedContribution]) -> None:
        """Remember what round ``round_index`` certified, for the cascade of later rounds."""
        self.history.append((round_index, list(entries)))
        while self.history and self.history[0][0] < round_index - self.policy.cascade_hops + 1:
            self.history.popleft()

    def epoch_scores(self, owed: bool = False) -> dict[str, float]:
        """Scores released so far in the current epoch, by miner (hex key); with ``owed``,
        plus what each miner holds (earned, to be released by its next passed audit)."""
        return {m.hex(): b.epoch_score + (b.held if owed else 0.0)
                for m, b in sorted(self.books.items())}

    def audit(self, round_index: int, contribution: Contribution,
              oracle: RoundOracle) -> VerificationResult:
        """Audit one contribution of ``round_index`` in full, now, whatever the audit policy.

        For a reviewer: a leader's certificate includes a contribution this validator left out
        without auditing it (no positive value on its own data, which is an opinion, not a
        fact). Before endorsing, it establishes the fact; a failure counts like any failed
        audit (ban, forfeited epoch score). ``oracle`` must be of the round's model.
        """
        book = self.book(contribution.sender)
        policy = audit_policy(self.policy.verification, book.audits, self.policy.trust,
                              contribution.codec)
        forced = replace(policy, zo_audit_probability=1.0, fo_audit_probability=1.0)
        return self._audit(round_index, contribution, oracle, forced)

    def penalize(self, round_index: int, miner: PublicKey) -> None:
        """Book a proven offence of ``miner`` in ``round_index`` (an equivocation,
        protocol.equivocation) exactly as a failed audit: banned, epoch score forfeited."""
        book = self.book(miner)
        book.audits = after_audit(book.audits, False, round_index)
        book.epoch_score = 0.0

    def book(self, miner: PublicKey) -> MinerBook:
        """The book of ``miner`` (created empty for a stranger)."""
        return self.books.setdefault(miner, MinerBook())

    # ----------------------------------------------------------------------------- stages

    def _forget_absent(self, t: int) -> None:
        for miner, book in self.books.items():
            if needs_reset(book.presence, t, self.policy.liveness):
                self.ratings.reset(miner.hex())
                book.indicator = 0.0
                book.presence = None
                book.audits = replace(book.audits, passed=0)

    def _cascade(self, t: int, oracle: RoundOracle) -> dict[PublicKey, float]:
        credit: dict[PublicKey, float] = {}
        for round_index, entries in self.history:
            hop = t - round_index
            if not 1 <= hop <= self.policy.cascade_hops:
                continue
            scale = self.policy.cascade_decay**hop
            for contribution, weight in entries:
                influence = oracle.influence(contribution, weight)
                if math.isfinite(influence):
                    credit[contribution.sender] = credit.get(contribution.sender, 0.0) + \
                        scale * influence
        return credit

    def _filter(
        self, arrivals: Iterable[Arrival], ctx: FilterContext, counters: FilterCounters
    ) -> tuple[dict[PublicKey, _Pending], dict[PublicKey, FilterVerdict], int, frozenset[Digest]]:
        pending: dict[PublicKey, _Pending] = {}
        failed: dict[PublicKey, FilterVerdict] = {}
        refused = 0
        rejected: set[Digest] = set()
        for arrival in arrivals:
            verdict = run_filters(arrival.raw, ctx, self.guard, arrival.received_at, counters)
            if not verdict.passed and verdict.digest is not None:
                rejected.add(verdict.digest)
            if verdict.passed and verdict.signed is not None:
                sender = verdict.signed.message.sender
                if sender in pending:  # a second message this round: only the first counts
                    counters.counts[FilterReason.PASSED] -= 1
                    counters.counts[FilterReason.DUPLICATE] += 1
                    continue
                pending[sender] = _Pending(verdict.signed.message, verdict.signed.digest,
                                           verdict.signed.envelope)
                failed.pop(sender, None)
                continue
            named = verdict.sender if verdict.sender in ctx.registered else None
            if named is None:
                refused += 1
            elif named not in pending:
                failed.setdefault(named, verdict)
        return pending, failed, refused, frozenset(rejected)

    def _raw_value(self, p: _Pending, cascade: dict[PublicKey, float], loss: float) -> float:
        """The value the contribution would score if it passed every gate."""
        provisional = RoundOutcome(True, True, True, p.delta, p.influence, 0.0,
                                   cascade=cascade.get(p.contribution.sender))
        return match_score(provisional, loss, self.policy.match)

    def _verify(self, t: int, p: _Pending, oracle: RoundOracle, value: float,
                stake: float) -> None:
        """Stage 2, for contributions worth paying for: a contribution with no positive value
        is neither certified nor paid whatever its scalars, so it is not audited (its verdict
        stays None and it fails the gate unless its sender is trusted; it earns 0 anyway)."""
        book = self.book(p.contribution.sender)
        trust = self.policy.trust
        c = p.contribution
        if not value > 0.0:
            p.gate = passes_verification(None, book.audits, t, trust)
            return
        policy = audit_policy(self.policy.verification, book.audits, trust, c.codec, stake)
        result = self._audit(t, c, oracle, policy)
        p.verification = result
        p.gate = passes_verification(result.verified, book.audits, t, trust)

    def _audit(self, t: int, c: Contribution, oracle: RoundOracle,
               policy: VerificationPolicy) -> VerificationResult:
        """Stage 2 proper: verify ``c`` under ``policy`` and book the outcome in its sender's
        audit record (a failed audit bans and forfeits the epoch, validator.trust)."""
        absolute = 0.0
        if c.codec == "zo":
            absolute = zo_noise_floor(oracle.assigned_loss(c), self.network.spsa_eps,
                                      policy.zo_ulps)
        result = verify_contribution(c, oracle, secret=self.secret, policy=policy,
                                     local_steps=self.network.local_steps, absolute=absolute)
        book = self.book(c.sender)
        book.audits = after_audit(book.audits, result.verified, t)
        if result.verified is False:
            book.epoch_score = book.held = 0.0
        elif result.verified:
            book.release()
        return result

    def _measure(self, t: int, measured: Sequence[_Pending], oracle: RoundOracle) -> None:
        if not measured:
            return
        weights = probe_weights([p.contribution for p in measured],
                                self.policy.certificate_mode,
                                self.network.max_contributions_per_round)
        key = keyed_hash(self.secret, _PERSON_EVAL_DATA, struct.pack("<Q", t))
        total = oracle.num_train_samples()
        indices = random_samples(key, total, min(self.policy.random_samples, total))
        for p, weight in zip(measured, weights, strict=True):
            p.delta = loss_delta(oracle.measure(p.contribution, weight, indices))
            p.influence = oracle.influence(p.contribution, weight)
            book = self.book(p.contribution.sender)
            book.indicator = update_indicator(book.indicator, own_beats_random(p.delta),
                                              self.policy.indicator_alpha)

    def _outcomes(
        self, t: int, pending: dict[PublicKey, _Pending], failed: dict[PublicKey, FilterVerdict],
        cascade: dict[PublicKey, float],
    ) -> dict[PublicKey, RoundOutcome]:
        outcomes: dict[PublicKey, RoundOutcome] = {}
        for miner, verdict in failed.items():
            book = self.book(miner)
            synced = verdict.reason is not FilterReason.OUT_OF_SYNC
            outcomes[miner] = RoundOutcome(False, None, synced, None, None, book.indicator)
        for miner, p in pending.items():
            book = self.book(miner)
            live = 1.0 if book.presence is None else liveness_factor(
                book.presence, t, self.policy.liveness)
            verified = False if p.banned else (
                p.verification.verified if p.verification is not None else None)
            outcomes[miner] = RoundOutcome(
                filters_passed=True, verified=verified, synced=True, delta=p.delta,
                influence=p.influence, indicator_average=book.indicator, liveness=live,
                trusted=p.gate and verified is None, cascade=cascade.get(miner),
            )
            book.presence = mark_seen(book.presence, t)
        return outcomes

    def _rewards(
        self, outcomes: dict[PublicKey, RoundOutcome], values: dict[PublicKey, float]
    ) -> dict[PublicKey, float]:
        rewards: dict[PublicKey, float] = {}
        for miner, outcome in outcomes.items():
            rating = self.ratings.get(miner.hex())
            rewards[miner] = reward_score(outcome, values[miner], rating, self.policy.reward)
            self.book(miner).held += rewards[miner]
        return rewards

    def _credit_absent_cascade(
        self, t: int, pending: dict[PublicKey, _Pending], cascade: dict[PublicKey, float],
        loss: float,
    ) -> None:
        """Cascade credit of miners with no contribution scored this round (absent, or failed
        the filters): their earlier certified work still helps this round's model, so it joins
        their epoch score at their standing (rating and indicator factors; not banned)."""
        if not (math.isfinite(loss) and loss > 0.0):
            return
        weight = self.policy.match.influence_weight
        for miner, credit in sorted(cascade.items()):
            book = self.book(miner)
            if miner in pending or is_banned(book.audits, t, self.policy.trust):
                continue
            value = nonnegative(weight * (-credit / loss))
            rating = self.ratings.get(miner.hex())
            book.held += (value * rating_factor(rating, self.policy.reward)
                          * indicator_factor(book.indicator, self.policy.reward))

    def _certificate(
        self, pending: dict[PublicKey, _Pending], values: dict[PublicKey, float],
        rewards: dict[PublicKey, float],
    ) -> list[CertEntry]:
        candidates = [Candidate(p.contribution, p.digest, values[m])
                      for m, p in pending.items() if _eligible(p, rewards.get(m, 0.0))]
        mode = self.policy.certificate_mode
        chosen = select_top(candidates, self.network.max_contributions_per_round, mode)
        return certificate_entries(chosen, mode) if chosen else []

    def _miner_rounds(
        self, t: int, pending: dict[PublicKey, _Pending], failed: dict[PublicKey, FilterVerdict],
        outcomes: dict[PublicKey, RoundOutcome], values: dict[PublicKey, float],
        rewards: dict[PublicKey, float], ppb: dict[PublicKey, int],
    ) -> dict[PublicKey, MinerRound]:
        out: dict[PublicKey, MinerRound] = {}
        for miner, outcome in sorted(outcomes.items()):
            p = pending.get(miner)
            verdict = failed.get(miner)
            rating = self.ratings.get(miner.hex())
            reason = explain_reward(outcome, values[miner], rating, self.policy.reward)
            if verdict is not None:
                reason = f"failed fast filters: {verdict.reason.value} {verdict.detail}".strip()
            elif p is not None and p.banned:
                failed_round = self.book(miner).audits.failed_round
                reason = f"banned after a failed audit in round {failed_round}"
            elif p is not None and p.verification is not None and p.verification.penalize:
                reason = f"failed verification: {p.verification.reason}"
            receipt = build_receipt(
                network_id=self.network.network_id, round_index=t, validator=self.validator,
                sequence=self._next_sequence(), miner=miner, outcome=outcome, rating=rating,
                weight_ppb=ppb.get(miner, 0), reason=reason,
            )
            out[miner] = MinerRound(
                miner=miner,
                filter=verdict.reason if verdict is not None else FilterReason.PASSED,
                detail=verdict.detail if verdict is not None else "",
                contribution=p.contribution if p is not None else None,
                digest=p.digest if p is not None else None,
                verification=p.verification if p is not None else None,
                outcome=outcome, value=values[miner], reward=rewards[miner],
                weight_ppb=ppb.get(miner, 0), receipt=receipt,
            )
        return out

    def _close_epoch(self, t: int) -> dict[str, int] | None:
        if (t + 1) % self.network.epoch_length != 0:
            return None
        weights = epoch_weights(self.epoch_scores(), self.policy.weights)
        for book in self.books.values():
            book.epoch_score = 0.0
        return weights

    def _next_sequence(self) -> int:
        if self._sequence is not None:
            return self._sequence()
        self._counter += 1
        return self._counter

    # ----------------------------------------------------------------------------- state

    def state_to_json(self) -> dict[str, Any]:
        """The books, receipt counter and cascade history as JSON-ready data (ratings are
        persisted by their own ``RatingStore``)."""
        return {
            "version": STATE_VERSION,
            "counter": self._counter,
            "books": {m.hex(): _book_json(b) for m, b in sorted(self.books.items())},
            "history": [[r, [[encode(c).hex(), w] for c, w in entries]]
                        for r, entries in self.history],
        }

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore what ``state_to_json`` wrote."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown pipeline state version {data.get('version')}")
        self._counter = int(data["counter"])
        self.books = {PublicKey(bytes.fromhex(m)): _book_from_json(b)
                      for m, b in data["books"].items()}
        self.history = deque()
        for r, entries in data["history"]:
            decoded = []
            for raw, w in entries:
                message = decode(bytes.fromhex(raw))
                if isinstance(message, Contribution):
                    decoded.append((message, float(w)))
            self.history.append((int(r), decoded))


def _eligible(p: _Pending, reward: float) -> bool:
    """May be certified: passed the verification gate and earned a positive reward."""
    return p.gate and not p.banned and reward > 0.0


def probe_weights(
    contributions: Sequence[Contribution], mode: WeightMode, limit: int
) -> list[float]:
    """The weight each contribution is measured at: what it would get if all of them were
    certified (the top ``limit`` by K under ``SCALARS``; equal shares otherwise)."""
    if mode is WeightMode.SCALARS:
        sizes = sorted((c.scalars for c in contributions), reverse=True)[:limit]
        total = float(sum(sizes))
        return [c.scalars / total for c in contributions]
    return [1.0 / min(len(contributions), limit)] * len(contributions)


def _book_json(book: MinerBook) -> dict[str, Any]:
    presence = book.presence
    return {
        "passed": book.audits.passed, "failed_round": book.audits.failed_round,
        "indicator": book.indicator, "epoch_score": book.epoch_score, "held": book.held,
        "presence": None if presence is None else [presence.first_seen, presence.last_seen],
    }


def _book_from_json(data: dict[str, Any]) -> MinerBook:
    presence = data["presence"]
    failed = data["failed_round"]
    return MinerBook(
        audits=AuditRecord(int(data["passed"]), None if failed is None else int(failed)),
        indicator=float(data["indicator"]),
        presence=None if presence is None else Presence(int(presence[0]), int(presence[1])),
        epoch_score=float(data["epoch_score"]), held=float(data.get("held", 0.0)),
    )


__all__ = [
    "Arrival",
    "MinerBook",
    "MinerRound",
    "RoundOracle",
    "RoundScoring",
    "ScoringPipeline",
    "ScoringPolicy",
]
