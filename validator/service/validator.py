"""`seedswarm validator`'s service: a thin asyncio shell around validator.service.machine.

One TaskGroup runs the inbound screens (contributions into the pool, bundles into the
follower), the driver (apply, catch up, certify as leader) and, with a chain, the epoch duties
(commit, reveal, settle). Scoring and the model come in through `ValidatorEngine`; ratings and
epoch scores are persisted after every round, so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.catchup import LOG_PROTOCOL, log_handler
from protocol.errors import ConsensusError
from protocol.follower import Follower
from protocol.identity import NodeKey
from protocol.logstore import write_atomic
from protocol.messages import CertificateEndorsement
from protocol.netconfig import NetworkConfig
from protocol.peergate import GatePolicy, PeerGate
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS, RoundBundle
from protocol.rounds import Patience, RoundClock, epoch_of, wake_time
from protocol.signing import seal
from protocol.transport.base import Subscription, Transport, TransportError
from validator.ratings import RatingStore
from validator.service.certify import applied_entries, build_bundle, chosen_entries, time_sequence
from validator.service.chain import EpochChain, due_step, is_final_failure
from validator.service.leader import Stakes, leader_for
from validator.service.ledger import Ledger
from validator.service.machine import ValidatorAction, ValidatorView, next_action
from validator.service.pool import ContributionPool
from validator.service.ports import ReceiptSource, ValidatorEngine
from validator.service.receipts import RECEIPT_PROTOCOL, ReceiptBook

_log = logging.getLogger("validator.service")


@dataclass(frozen=True)
class ValidatorConfig:
    """Everything a validator service needs besides its key, transport, engine and chain."""

    network: NetworkConfig
    state_dir: Path
    genesis_time: float
    validators: Stakes
    miners: tuple[bytes, ...]
    peers: tuple[str, ...] = ()
    work_fraction: float = 0.6
    patience: Patience = field(default_factory=Patience)
    gate: GatePolicy = field(default_factory=GatePolicy)
    request_timeout_s: float = 2.0
    chain_margin_s: float = 1.5
    status_file: Path | None = None
    last_round: int | None = None
    """Stop certifying once the replica holds this round's model (epoch duties go on)."""

    @property
    def clock(self) -> RoundClock:
        return RoundClock(self.genesis_time, self.network.round_length_s, self.work_fraction)


class ValidatorService:
    """Collects, certifies (when leading), follows, scores and submits; see module docstring."""

    def __init__(
        self,
        config: ValidatorConfig,
        key: NodeKey,
        transport: Transport,
        engine: ValidatorEngine,
        chain: EpochChain | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.key = key
        self.transport = transport
        self.engine = engine
        self.chain = chain
        self.now = now
        self.clock = config.clock
        self.gate = PeerGate(config.gate)
        net = config.network
        self.pool = ContributionPool(
            net.network_id, config.miners, net.max_message_bytes, self.gate
        )
        self.follower = Follower(
            engine, config.state_dir, network_id=net.network_id,
            validators=config.validators, max_envelope_bytes=net.max_message_bytes,
            on_applied=self._record,
        )
        self.ledger = Ledger.load(config.state_dir / "ledger.json")
        self.ratings = RatingStore.load(config.state_dir / "ratings.json")
        scored = engine.receipt if isinstance(engine, ReceiptSource) else None
        self.receipts = ReceiptBook(key, net.network_id, self.ratings, scored)
        self.certified = 0
        self.endorsements = 0
        self._certified_in = -1
        self._last_catch_up = -math.inf
        self._wake = asyncio.Event()
        self._chain_errors = 0

    async def run(self) -> None:
        """Serve until cancelled."""
        limit = self.transport.limits.max_message_bytes
        self.transport.serve(LOG_PROTOCOL, log_handler(self.follower.store, limit))
        self.transport.serve(RECEIPT_PROTOCOL, self.receipts.handle)
        await self.follower.replay_local()
        contributions = await self.transport.subscribe(TOPIC_CONTRIBUTIONS)
        bundles = await self.transport.subscribe(TOPIC_BUNDLES)
        endorsements = await self.transport.subscribe(TOPIC_ENDORSEMENTS)
        self._write_status()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._receive_contributions(contributions))
            group.create_task(self._receive_bundles(bundles))
            group.create_task(self._count_endorsements(endorsements))
            group.create_task(self._drive())
            if self.chain is not None:
                group.create_task(self._epochs(self.chain))

    # -- inbound --------------------------------------------------------------------------

    async def _receive_contributions(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            self.pool.receive(delivery.data, delivery.from_peer,
                              current_round=self.engine.round_index, now=self.now())

    async def _receive_bundles(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            if delivery.from_peer == self.transport.peer_id:
                continue
            if self.follower.receive(delivery.data, delivery.from_peer, self.gate, self.now()):
                self._wake.set()

    async def _count_endorsements(self, subscription: Subscription) -> None:
        async for _ in subscription:
            self.endorsements += 1

    # -- driver ---------------------------------------------------------------------------

    async def _drive(self) -> None:
        while True:
            now = self.now()
            current = self.clock.phase(now).round_index
            view = ValidatorView(
                at_round=self.engine.round_index,
                certified_in=self._certified_in,
                next_bundle_ready=self.engine.round_index in self.follower.pending,
                last_catch_up=self._last_catch_up,
                leads_current_round=self._leads(current),
                finished=self._finished(),
            )
            action = next_action(view, self.clock, now, self.config.patience)
            if action is ValidatorAction.APPLY:
                await self._apply_received()
            elif action is ValidatorAction.CATCH_UP:
                await self._catch_up(current)
            elif action is ValidatorAction.CERTIFY:
                await self._certify(current)
            else:
                await self._sleep_until(wake_time(self.clock, now, self.config.patience))

    def _leads(self, clock_round: int) -> bool:
        """This validator certifies the replica's round during `clock_round` (see leader.py)."""
        leader = leader_for(self.config.network.network_id, self.engine.round_index,
                            self.engine.model_hash, clock_round, self.config.validators)
        return leader == self.key.public.raw

    def _finished(self) -> bool:
        last = self.config.last_round
        return last is not None and self.engine.round_index >= last

    async def _apply_received(self) -> None:
        for round_index in await self.follower.advance():
            await self._endorse(round_index)
        self._write_status()

    async def _catch_up(self, current: int) -> None:
        peers = [p for p in self.config.peers if p != self.transport.peer_id]
        try:
            await self.follower.catch_up(self.transport, peers, until_round=current,
                                         request_timeout=self.config.request_timeout_s)
        finally:
            self._last_catch_up = self.now()

    async def _certify(self, clock_round: int) -> None:
        self._certified_in = clock_round
        round_index, prev = self.engine.round_index, self.engine.model_hash
        received = self.pool.take(round_index, prev)
        decision = await asyncio.to_thread(self.engine.certify, received)
        chosen = chosen_entries(decision, received)
        try:
            new_hash = await asyncio.to_thread(self.engine.apply_entries, applied_entries(chosen))
        except ConsensusError as exc:
            _log.error("round %d: cannot apply own decision: %s", round_index, exc)
            await asyncio.to_thread(self.engine.reload, self.config.state_dir)
            return
        bundle = build_bundle(self.key, network_id=self.config.network.network_id,
                              round_index=round_index, prev_model_hash=prev,
                              new_model_hash=new_hash, chosen=chosen)
        raw = bundle.encode()
        self.follower.store.put(round_index, raw)  # durable before anyone can depend on it
        try:
            await self.transport.publish(TOPIC_BUNDLES, raw)
        except TransportError as exc:
            _log.warning("round %d: publishing the certificate failed: %s", round_index, exc)
        await asyncio.to_thread(self.engine.save, self.config.state_dir)
        self._record(bundle)
        self.certified += 1
        self._write_status()

    async def _endorse(self, round_index: int) -> None:
        raw = self.follower.store.get(round_index)
        if raw is None:
            return
        bundle = self.follower.open(raw)
        endorsement = CertificateEndorsement(
            network_id=self.config.network.network_id, round_index=round_index,
            validator=self.key.public.raw, sequence=time_sequence(),
            certificate_digest=bundle.certificate.digest, approve=True, reason="reproduced",
        )
        try:
            await self.transport.publish(TOPIC_ENDORSEMENTS, seal(endorsement, self.key))
        except TransportError as exc:
            _log.info("could not publish an endorsement: %s", exc)

    def _record(self, bundle: RoundBundle) -> None:
        """Score bookkeeping for every applied round, own or received (same numbers)."""
        weights = {c.sender.hex(): w for c, w in bundle.entries()}
        epoch = epoch_of(self.clock.phase(self.now()).round_index,
                         self.config.network.epoch_length_rounds)
        self.ledger.add_scores(epoch, bundle.round_index, weights)
        self.ratings.rate_round(bundle.round_index, weights)
        self.receipts.remember(bundle, self.config.miners)
        self.ledger.record_loss(bundle.round_index, self.engine.validation_loss())

    async def _sleep_until(self, when: float) -> None:
        delay = max(0.005, min(when - self.now(), 1.0))
        self._wake.clear()
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass

    # -- epochs ---------------------------------------------------------------------------

    async def _epochs(self, chain: EpochChain) -> None:
        while True:
            await self._epoch_pass(chain)
            await asyncio.sleep(0.5)  # chain windows open on the wall clock; poll them

    async def _epoch_pass(self, chain: EpochChain) -> None:
        current_epoch = epoch_of(self.clock.phase(self.now()).round_index,
                                 self.config.network.epoch_length_rounds)
        for epoch, record in sorted(self.ledger.epochs.items()):
            if epoch >= current_epoch or record.stage in ("settled", "skipped", "failed"):
                continue
            try:
                windows = await asyncio.to_thread(chain.windows, epoch)
                chain_now = await asyncio.to_thread(chain.next_block_time)
                step = due_step(record.stage, windows, chain_now, self.config.chain_margin_s)
                if step is None:
                    continue
                stage = await asyncio.to_thread(chain.run_step, step, epoch, dict(record.scores))
            except Exception as exc:  # the service boundary: a chain hiccup must not kill it
                self._chain_errors += 1
                _log.warning("epoch %d: chain step failed (will retry): %r", epoch, exc)
                if is_final_failure(exc):
                    self.ledger.set_stage(epoch, "failed")
                continue
            self.ledger.set_stage(epoch, stage)
            self._write_status()

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for the devnet table and operators."""
        return {
            "role": "validator",
            "peer_id": self.transport.peer_id,
            "time": self.now(),
            "round": self.engine.round_index,
            "model_hash": self.engine.model_hash.hex(),
            "certified": self.certified,
            "endorsements": self.endorsements,
            "ledger": self.ledger.to_json(),
            "ratings": {k: [r.mu, r.sigma] for k, r in self.ratings.ratings.items()},
            "gate": self.gate.snapshot(),
            "transport": self.transport.stats.snapshot(),
            "chain_errors": self._chain_errors,
        }

    def _write_status(self) -> None:
        if self.config.status_file is not None:
            data = json.dumps(self.status(), sort_keys=True).encode()
            write_atomic(self.config.status_file, data)
