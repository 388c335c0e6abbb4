"""`seedswarm validator`'s service: a thin asyncio shell around validator.service.validator_machine.

One TaskGroup runs the inbound screens (contributions into the pool, bundles and endorsements
into the follower), the driver (apply what is final, catch up, score every round, review other
leaders' certificates, certify as leader) and, with a chain, the epoch duties (commit, reveal,
settle). Scoring and the model come in through `ValidatorEngine`.

Every validator keeps its own books: the epoch scores it submits on-chain, its ratings and its
receipts come from its own scoring of each round, whoever leads it (the chain takes the
stake-weighted median of independent weights). Bundles are applied only once final (approved by
a stake majority, see runtime.follower), by every node alike, the leader included. Ratings and
epoch scores are persisted as they change, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters.transport.base import Subscription, Transport, TransportError
from protocol.domain_types import PublicKey
from protocol.equivocation import EQUIVOCATION_ROUNDS, MAX_PROOFS_PER_BUNDLE, Equivocation
from protocol.errors import ConsensusError
from protocol.identity import NodeKey
from protocol.leader import leader_for
from protocol.membership import MembershipTimeline, Stakes, miners_at, stakes_at
from protocol.messages import CertificateEndorsement, RoundCertificate
from protocol.netconfig import NetworkConfig
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS, RoundBundle
from protocol.rounds import Patience, RoundClock, epoch_of, wake_time
from protocol.signing import Signed, open_envelope, seal
from runtime.catchup import LOG_PROTOCOL, log_handler
from runtime.follower import Follower
from runtime.gossip_latency import GossipLatency
from runtime.peergate import GatePolicy, PeerGate, member_peers
from runtime.service_shell import (
    CatchUp,
    PhaseTimings,
    Waker,
    final_round_line,
    is_ready,
    write_status,
)
from validator.certificate import CertificateCheck, WeightMode, endorse
from validator.ratings import RatingStore
from validator.service.certify import (
    applied_entries,
    build_bundle,
    chosen_entries,
    time_sequence,
    to_ppb,
    without_senders,
)
from validator.service.epoch_chain import EpochChain, due_step, is_final_failure
from validator.service.evidence import keep_proof
from validator.service.ledger import Ledger
from validator.service.pool import ContributionPool
from validator.service.ports import Penalizer, ReceiptSource, RoundDecision, ValidatorEngine
from validator.service.receipt_server import RECEIPT_PROTOCOL, ReceiptBook
from validator.service.review import ReviewBook, Reviewer, conflict_check, review_order
from validator.service.scoreboard import Scoreboard
from validator.service.validator_machine import ValidatorAction, ValidatorView, next_action

_log = logging.getLogger("validator.service")


@dataclass(frozen=True)
class ValidatorConfig:
    """Everything a validator service needs besides its key, transport, engine and chain."""

    network: NetworkConfig
    state_dir: Path
    genesis_time: float
    validators: Stakes
    miners: tuple[PublicKey, ...]
    """The stake table and the registered miners for every round, unless the service is given
    a membership timeline."""
    peers: tuple[str, ...] = ()
    work_fraction: float = 0.6
    patience: Patience = field(default_factory=Patience)
    gate: GatePolicy = field(default_factory=GatePolicy)
    request_timeout_s: float = 2.0
    chain_margin_s: float = 1.5
    status_file: Path | None = None
    last_round: int | None = None
    """Stop certifying once the replica holds this round's model (epoch duties go on)."""
    weight_mode: WeightMode = WeightMode.SCALARS
    """The network's certificate weight mode (what reviewers require of a leader's weights)."""

    @property
    def clock(self) -> RoundClock:
        return RoundClock(self.genesis_time, self.network.round_length, self.work_fraction)


class ValidatorService:
    """Collects, scores, reviews, certifies (when leading), follows and submits; see the
    module docstring."""

    def __init__(
        self,
        config: ValidatorConfig,
        key: NodeKey,
        transport: Transport,
        engine: ValidatorEngine,
        chain: EpochChain | None = None,
        *,
        now: Callable[[], float] = time.time,
        timeline: MembershipTimeline | None = None,
    ) -> None:
        """`timeline`: the membership of each round (share it with the engine; the composition
        root refreshes it); without one, `config.validators` and `config.miners` always hold."""
        self.config = config
        self.key = key
        self.transport = transport
        self.engine = engine
        self.chain = chain
        self.now = now
        self.clock = config.clock
        # strangers (unregistered ids) share one small budget; members keep their own records
        self.gate = PeerGate(config.gate,
                             members=None if timeline is None else member_peers(timeline))
        net = config.network
        self.timeline = timeline
        # every check asks the table of the round it judges (protocol.membership)
        self.stakes_at = stakes_at(config.validators if timeline is None else timeline)
        self.miners_at = miners_at(config.miners if timeline is None else timeline)
        self.pool = ContributionPool(
            net.network_id, self.miners_at, net.max_message_bytes, self.gate,
            on_equivocation=self._penalize,
        )
        self.follower = Follower(
            engine, config.state_dir, network_id=net.network_id,
            validators=self.stakes_at, max_envelope_bytes=net.max_message_bytes,
            on_applied=self._record, latency=GossipLatency(net.round_length), now=now,
        )
        self.ledger = Ledger.load(config.state_dir / "ledger.json")
        self.ratings = RatingStore.load(config.state_dir / "ratings.json")
        scored = engine.receipt if isinstance(engine, ReceiptSource) else None
        self.receipts = ReceiptBook(key, net.network_id, self.ratings, scored)
        self.reviewer = Reviewer(net.network_id, self.stakes_at,
                                 net.max_contributions_per_round, config.weight_mode)
        self.book = ReviewBook()
        self.certified = 0
        self.scored = 0
        self.fabrications_proven = 0  # proofs kept under state_dir/proofs (seedswarm slash)
        self.audits = 0
        """Contributions audited on demand while reviewing (see `_establish_facts`)."""
        self.endorsements = 0
        """Peers' endorsements the follower accepted."""
        self.approvals = 0
        self.disputes: deque[tuple[int, str]] = deque(maxlen=32)
        """(round, reason) of this validator's latest disputes."""
        self.disputed = 0
        self.equivocators: deque[tuple[int, str]] = deque(maxlen=32)
        """(round, miner hex) of the latest equivocations proven here (protocol.equivocation)."""
        self.review_seconds = 0.0
        self.score_seconds = 0.0
        self._certified_in = -1
        self._at = -1
        self._entered_at = -math.inf
        self._unbooked: deque[RoundDecision] = deque()
        self._proven: deque[Equivocation] = deque()
        self._catch_up_log = CatchUp(config.peers, config.request_timeout_s)
        self._waker = Waker()
        self._chain_errors = 0
        self.timings = PhaseTimings()
        self.scoreboard = Scoreboard()
        self.running = False
        """Subscribed and driving (see `ready`)."""

    async def run(self) -> None:
        """Serve until cancelled."""
        limit = self.transport.limits.max_message_bytes
        self.transport.serve(LOG_PROTOCOL, log_handler(self.follower.store, limit))
        self.transport.serve(RECEIPT_PROTOCOL, self.receipts.handle)
        await self.follower.replay_local()
        contributions = await self.transport.subscribe(TOPIC_CONTRIBUTIONS)
        bundles = await self.transport.subscribe(TOPIC_BUNDLES)
        endorsements = await self.transport.subscribe(TOPIC_ENDORSEMENTS)
        self.running = True
        self._write_status()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive_contributions(contributions))
                group.create_task(self._receive_bundles(bundles))
                group.create_task(self._receive_endorsements(endorsements))
                group.create_task(self._drive())
                if self.chain is not None:
                    group.create_task(self._epochs(self.chain))
        finally:
            self._book_pending()  # a round scored just before stopping keeps its books

    # -- inbound --------------------------------------------------------------------------

    async def _receive_contributions(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            at = self.engine.round_index
            if (self.pool.receive(delivery.data, delivery.forwarder, current_round=at,
                                  now=self.now(), origin=delivery.from_peer)
                    and self.pool.complete(at)):
                self._waker.set()  # the round may close early (see machine.next_action)

    async def _receive_bundles(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            if delivery.from_peer == self.transport.peer_id:
                continue
            if self.follower.receive(delivery.data, delivery.forwarder, self.gate, self.now(),
                                     delivery.from_peer):
                self._waker.set()

    async def _receive_endorsements(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            if delivery.from_peer == self.transport.peer_id:
                continue
            if self.follower.receive_endorsement(delivery.data, delivery.forwarder, self.gate,
                                                 self.now(), delivery.from_peer):
                self.endorsements += 1
                self._waker.set()

    # -- driver ---------------------------------------------------------------------------

    async def _drive(self) -> None:
        while True:
            self._book_proofs()
            now = self.now()
            current = self.clock.phase(now).round_index
            at = self.engine.round_index
            if at != self._at:  # at start-up the round counts as reached long ago
                self._entered_at = now if self._at >= 0 else -math.inf
                self._at = at
            view = ValidatorView(
                at_round=at,
                certified_in=self._certified_in,
                next_bundle_ready=self.follower.ready(),
                last_catch_up=self._catch_up_log.last,
                leads_current_round=self._leads(current),
                finished=self._finished(),
                scored=self.book.decision(at) is not None,
                review_waiting=bool(self._to_review(at)),
                entered_at=self._entered_at,
                all_in=self.pool.complete(at),
            )
            action = next_action(view, self.clock, now, self.config.patience)
            if action is ValidatorAction.APPLY:
                await self._apply_final()
            elif action is ValidatorAction.CATCH_UP:
                await self._catch_up(current)
            elif action is ValidatorAction.SCORE:
                await self._score()
            elif action is ValidatorAction.REVIEW:
                await self._review(current)
            elif action is ValidatorAction.CERTIFY:
                await self._certify(current)
            else:
                self._book_pending()  # idle: the round's critical path is done
                await self._waker.sleep_until(wake_time(self.clock, now, self.config.patience),
                                              self.now())

    def _leads(self, clock_round: int) -> bool:
        """This validator certifies the replica's round during `clock_round` (see leader.py)."""
        at = self.engine.round_index
        leader = leader_for(self.config.network.network_id, at, clock_round,
                            self.stakes_at(at))
        return leader == self.key.public.raw

    def _staked(self, round_index: int) -> bool:
        """This validator is in the stake table of `round_index`."""
        me = self.key.public.raw
        return any(k == me for k, _ in self.stakes_at(round_index))

    def _finished(self) -> bool:
        last = self.config.last_round
        return last is not None and self.engine.round_index >= last

    def _to_review(self, round_index: int) -> list[RoundBundle]:
        if self.book.decision(round_index) is None or not self._staked(round_index):
            return []  # a validator without stake in the round has no vote to give
        candidates = self.follower.candidates(round_index)
        return self.book.unreviewed(round_index, candidates, self.key.public.raw)

    async def _apply_final(self) -> None:
        with self.timings.timed("apply"):
            await self.follower.advance()
        self.book.forget_before(self.engine.round_index)
        self._write_status()

    async def _catch_up(self, current: int) -> None:
        try:
            with self.timings.timed("catch_up"):
                await self._catch_up_log.run(self.follower, self.transport, current, self.now)
        finally:
            self.book.forget_before(self.engine.round_index)

    async def _score(self) -> None:
        """Score the replica's round from this validator's own pool, and book the result."""
        round_index, prev = self.engine.round_index, self.engine.model_hash
        received = self.pool.take(round_index, prev)
        started = time.perf_counter()
        decision = await asyncio.to_thread(self.engine.score, received)
        self.score_seconds += time.perf_counter() - started
        self.timings.add("score", time.perf_counter() - started)
        self.book.decide(decision)
        self.scored += 1
        # ratings, ledger and receipts are written once the driver is idle (after certifying
        # when leading): hundreds of milliseconds the round's certificate should not wait for
        self._unbooked.append(decision)

    def _book_pending(self) -> None:
        if not self._unbooked:
            return
        while self._unbooked:
            self._book_scores(self._unbooked.popleft())
        self._write_status()

    def _book_scores(self, decision: RoundDecision) -> None:
        """The validator's own books for the round: epoch scores, ratings, receipts."""
        # money follows measured improvement: the pipeline's reward scores, not the weights
        # a certificate averages updates with
        rewards = {miner.hex(): r for miner, r in decision.rewards.items()}
        epoch = epoch_of(self.clock.phase(self.now()).round_index,
                         self.config.network.epoch_length)
        # paid: what a passed audit released (validator.trust); a failed one forfeits the epoch
        paid = rewards if decision.released is None else \
            {miner.hex(): r for miner, r in decision.released.items()}
        self.ledger.add_scores(epoch, decision.round_index, paid,
                               forfeited=[m.hex() for m in decision.forfeited])
        self.ratings.rate_round(decision.round_index, rewards)
        ppb = {miner: to_ppb(w) for miner, w in decision.weights().items()}
        self.receipts.remember_round(decision.round_index, ppb,
                                     self.miners_at(decision.round_index))
        self.scoreboard.book_decision(decision, self.now())
        for proof in decision.proofs:
            if keep_proof(self.config.state_dir, self.config.network, epoch, proof):
                self.fabrications_proven += 1

    async def _review(self, clock_round: int) -> None:
        """Check every new candidate of the replica's round; publish approve or dispute."""
        round_index = self.engine.round_index
        decision = self.book.decision(round_index)
        if decision is None:
            return
        for bundle in review_order(self._to_review(round_index)):
            cert = bundle.certificate.message
            self.book.mark_reviewed(round_index, bundle.certificate.digest)
            started = time.perf_counter()
            decision = await self._establish_facts(decision, bundle)
            check = await asyncio.to_thread(
                self.reviewer.check, cert, decision, clock_round, self.engine.preview,
                self.pool.equivocation.equivocators(round_index))
            self.review_seconds += time.perf_counter() - started
            self.timings.add("review", time.perf_counter() - started)
            check = conflict_check(self.book, round_index, check, cert.new_model_hash)
            await self._publish_endorsement(cert, check)
        self._write_status()

    async def _establish_facts(self, decision: RoundDecision, bundle: RoundBundle) -> RoundDecision:
        """What the bundle proves, before judging it: its equivocation proofs and its
        contributions compared with the versions this validator kept (a different one proves
        its sender equivocated); then the certificate's entries this validator never received
        (their signed bytes travel in the bundle) or left out unaudited are audited in full,
        so the review disputes only facts. Failures join the decision's invalid set (kept for
        later candidates of the round)."""
        for proof in bundle.evidence:
            self.pool.add_proof(proof)
        for signed in bundle.contributions:
            self.pool.learn(signed)
        proven = self.pool.equivocation.equivocators(decision.round_index)
        seen = decision.seen
        new = tuple(s for s in bundle.contributions
                    if s.digest not in seen and s.message.sender not in proven
                    and s.message.round_index == decision.round_index)
        if new:
            stale = frozenset(s.digest for s in new
                              if s.message.base_model_hash != decision.prev_model_hash
                              or s.message.sender not in self.miners_at(decision.round_index))
            decision = replace(decision, learned=decision.learned + new,
                               rejected=decision.rejected | stale,
                               unpaid=decision.unpaid | (frozenset(s.digest for s in new) - stale))
            self.book.decide(decision)
        cert = bundle.certificate.message
        doubtful = [e.contribution_digest for e in cert.entries
                    if e.contribution_digest in decision.unpaid]
        if not doubtful:
            return decision
        failed = await asyncio.to_thread(self.engine.audit, decision, doubtful)
        self.audits += len(doubtful)
        decision = replace(decision, rejected=decision.rejected | failed,
                           unpaid=decision.unpaid - frozenset(doubtful))
        self.book.decide(decision)
        return decision

    def _penalize(self, proof: Equivocation) -> None:
        """A proof of equivocation learned here (received, or carried by a bundle): booked by
        the driver (`_book_proofs`), never while a scoring thread runs."""
        self._proven.append(proof)
        self._waker.set()

    def _book_proofs(self) -> None:
        """Each proven equivocator is booked as having failed an audit in that round
        (banned, its epoch score forfeited), as every validator holding the proof does."""
        while self._proven:
            proof = self._proven.popleft()
            miner = proof.sender
            self.equivocators.append((proof.round_index, miner.hex()))
            _log.warning("round %d: miner %s equivocated (two signed contributions); excluded "
                         "and penalized", proof.round_index, miner.hex()[:16])
            if isinstance(self.engine, Penalizer):
                self.engine.penalize(miner, proof.round_index)
            epoch = epoch_of(self.clock.phase(self.now()).round_index,
                             self.config.network.epoch_length)
            self.ledger.forfeit(epoch, miner.hex())

    async def _publish_endorsement(self, cert: RoundCertificate, check: CertificateCheck) -> None:
        net = self.config.network
        raw = seal(endorse(cert, check, self.key, time_sequence()), self.key)
        signed: Signed[CertificateEndorsement] = open_envelope(
            raw, network_id=net.network_id, max_size=net.max_message_bytes,
            expect=CertificateEndorsement,
        )
        self.follower.endorse_locally(signed)
        if check.approved:
            self.approvals += 1
        else:
            self.disputed += 1
            self.disputes.append((cert.round_index, check.reason))
            _log.warning("round %d: disputing %s's certificate: %s", cert.round_index,
                         cert.leader.hex()[:16], check.reason)
        try:
            await self.transport.publish(TOPIC_ENDORSEMENTS, raw)
        except TransportError as exc:
            _log.info("could not publish an endorsement: %s", exc)
        self._waker.set()

    async def _certify(self, clock_round: int) -> None:
        """Sign this validator's decision as the round's certificate and offer it."""
        self._certified_in = clock_round
        round_index, prev = self.engine.round_index, self.engine.model_hash
        decision = self.book.decision(round_index)
        if decision is None:
            return
        proven = self.pool.equivocation.equivocators(round_index)
        chosen = without_senders(chosen_entries(list(decision.entries), decision.received),
                                 proven, self.config.weight_mode)
        evidence = self.pool.equivocation.proofs(
            range(round_index - EQUIVOCATION_ROUNDS + 1, round_index + 1))[-MAX_PROOFS_PER_BUNDLE:]
        try:
            with self.timings.timed("certify"):
                new_hash = await asyncio.to_thread(self.engine.preview, applied_entries(chosen))
        except ConsensusError as exc:
            _log.error("round %d: cannot apply own decision: %s", round_index, exc)
            return
        if not self.book.approve(round_index, new_hash):
            _log.warning("round %d: another model is already approved; not certifying",
                         round_index)
            return
        bundle = build_bundle(self.key, network_id=self.config.network.network_id,
                              round_index=round_index, prev_model_hash=prev,
                              new_model_hash=new_hash, chosen=chosen, evidence=evidence)
        self.book.mark_reviewed(round_index, bundle.certificate.digest)
        self.follower.offer(bundle)
        try:
            await self.transport.publish(TOPIC_BUNDLES, bundle.encode())
        except TransportError as exc:
            _log.warning("round %d: publishing the certificate failed: %s", round_index, exc)
        self.certified += 1
        self._write_status()

    def _record(self, bundle: RoundBundle) -> None:
        """Bookkeeping for every round applied (final): the new model's validation loss, the
        round's record, one line in the log."""
        loss = self.engine.validation_loss()
        self.ledger.record_loss(bundle.round_index, loss)
        record = self.follower.last_final
        if record is not None and record.round_index == bundle.round_index:
            self.scoreboard.book_final(record)
            decision = self.book.decision(bundle.round_index)
            mine = ("not scored here" if decision is None else
                    f"this validator would certify {len(decision.entries)} of "
                    f"{len(decision.received)}")
            _log.info("%s", final_round_line(record, self.clock,
                                             f"validation loss {loss:.4f}, {mine}"))

    # -- epochs ---------------------------------------------------------------------------

    async def _epochs(self, chain: EpochChain) -> None:
        while True:
            await self._epoch_pass(chain)
            await asyncio.sleep(0.5)  # chain windows open on the wall clock; poll them

    async def _epoch_pass(self, chain: EpochChain) -> None:
        current_epoch = epoch_of(self.clock.phase(self.now()).round_index,
                                 self.config.network.epoch_length)
        for epoch, record in sorted(self.ledger.epochs.items()):
            if epoch >= current_epoch or record.stage in ("settled", "skipped", "failed"):
                continue
            step: str | None = None
            try:
                windows = await asyncio.to_thread(chain.windows, epoch)
                chain_now = await asyncio.to_thread(chain.next_block_time)
                step = due_step(record.stage, windows, chain_now, self.config.chain_margin_s)
                if step is None:
                    continue
                stage = await asyncio.to_thread(chain.run_step, step, epoch, dict(record.scores))
            except Exception as exc:  # the service boundary: a chain hiccup must not kill it
                self._chain_errors += 1
                failed = is_final_failure(exc)
                if step is not None:
                    self.scoreboard.book_chain(step, "failed" if failed else "retry")
                if failed:
                    reason = f"{record.stage} -> {exc}"
                    _log.error("epoch %d: lost for this validator: %s (a window closed before "
                               "its step reached the chain: the chain or this node is too slow "
                               "for the network's windows)", epoch, reason)
                    self.ledger.set_stage(epoch, "failed", reason)
                    self._write_status()
                else:
                    _log.warning("epoch %d: chain step failed, will retry: %r", epoch, exc)
                continue
            self.scoreboard.book_chain(step, "skipped" if stage == "skipped" else "ok")
            self.ledger.set_stage(epoch, stage)
            self._write_status()

    # -- status ---------------------------------------------------------------------------

    @property
    def catch_ups(self) -> int:
        """Times this node asked its peers for the certified log."""
        return self._catch_up_log.attempts

    @property
    def chain_errors(self) -> int:
        """Chain calls of its epoch duties that failed (and were retried or given up)."""
        return self._chain_errors

    def ready(self) -> bool:
        """Caught up with the certified history (runtime.service_shell.is_ready)."""
        return is_ready(self.running, self.engine.round_index, self._catch_up_log.last,
                        self.clock, self.now(), self.config.patience)

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for the devnet table and operators."""
        now = self.now()
        last = self.follower.last_final
        board = self.scoreboard
        return {
            "role": "validator",
            "peer_id": self.transport.peer_id,
            "time": now,
            "round": self.engine.round_index,
            "clock_round": self.clock.phase(now).round_index,
            "ready": self.ready(),
            "model_hash": self.engine.model_hash.hex(),
            "certified_hash": None if last is None else last.new_model_hash.hex(),
            "hash_agrees": self.follower.agrees(),
            "consensus_failures": self.follower.failures,
            "contributions": {
                "received": self.pool.received, "refused_at_door": dict(self.pool.refused),
                "scored": board.scored, "accepted": board.accepted,
                "refused": dict(board.refusals),
            },
            "chain_steps": {f"{step}:{result}": n
                            for (step, result), n in sorted(board.chain_steps.items())},
            "timings": self.timings.snapshot(),
            "certified": self.certified,
            "scored": self.scored,
            "fabrications_proven": self.fabrications_proven,
            "review_audits": self.audits,
            "endorsements": self.endorsements,
            "approvals": self.approvals,
            "disputed": self.disputed,
            "disputes": [list(d) for d in self.disputes],
            "equivocators": [list(e) for e in self.equivocators],
            "score_s": self.score_seconds,
            "review_s": self.review_seconds,
            "ledger": self.ledger.to_json(),
            "ratings": {k: [r.mu, r.sigma] for k, r in self.ratings.ratings.items()},
            "gate": self.gate.snapshot(),
            "transport": self.transport.stats.snapshot(),
            "chain_errors": self._chain_errors,
        }

    def _write_status(self) -> None:
        write_status(self.config.status_file, self.status())
