"""`seedswarm miner`'s service: a thin asyncio shell around node.service.miner_machine.

One TaskGroup runs three tasks: `_receive` screens gossiped bundles and `_receive_endorsements`
validators' endorsements into the follower (it applies a round only once a stake majority
approves it), each waking the driver; `_drive` asks the pure `next_action` what to do and
does it (apply final rounds, work on the current round in a thread and publish before the
deadline, or catch up from peers). Work itself is injected (`produce`): the composition root
passes the simulator's `Miner.work`, so live miners and simulated ones run the same code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.transport.base import Subscription, Transport, TransportError
from node.service.miner_machine import MinerAction, MinerView, next_action
from protocol.domain_types import PublicKey, Wei
from protocol.membership import MembershipTimeline
from protocol.netconfig import NetworkConfig
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS
from protocol.rounds import Patience, RoundClock, wake_time
from runtime.catchup import LOG_PROTOCOL, log_handler
from runtime.follower import Follower
from runtime.gossip_latency import GossipLatency
from runtime.model_state import ModelState
from runtime.peergate import GatePolicy, PeerGate, member_peers
from runtime.service_shell import (
    CatchUp,
    PhaseTimings,
    Waker,
    final_round_line,
    is_ready,
    write_status,
)

_log = logging.getLogger("node.service.miner")

Produce = Callable[[ModelState], bytes]
"""Computes and seals this miner's message for the state's round (runs in a thread); empty
bytes when the miner sits the round out (it is not registered for it)."""


@dataclass(frozen=True)
class MinerConfig:
    """Everything a miner service needs besides its key, transport and model."""

    network: NetworkConfig
    state_dir: Path
    genesis_time: float
    validators: tuple[tuple[PublicKey, Wei], ...]
    """(public key, stake) of every validator: the stake table that elects each round's leader
    (for every round, unless the service is given a membership timeline)."""
    peers: tuple[str, ...] = ()
    """Transport peer ids to fetch the certified log from (validators first is wise)."""
    work_fraction: float = 0.6
    patience: Patience = field(default_factory=Patience)
    gate: GatePolicy = field(default_factory=GatePolicy)
    request_timeout_s: float = 2.0
    status_file: Path | None = None
    last_round: int | None = None
    """Stop working once the replica holds this round's model (devnets end on a round)."""

    @property
    def clock(self) -> RoundClock:
        return RoundClock(self.genesis_time, self.network.round_length, self.work_fraction)


@dataclass
class MinerCounters:
    """What the miner did, for its status file."""

    published: int = 0
    late: int = 0
    sat_out: int = 0
    """Rounds the miner was not registered for (nothing produced)."""
    applied: int = 0
    catch_ups: int = 0
    caught_up_rounds: int = 0
    work_s: float = 0.0
    published_in: int = -1
    last_published: int = -1
    """The replica round of the last contribution published (-1: none)."""


class MinerService:
    """Follows the certified history and contributes to every round it can."""

    def __init__(
        self,
        config: MinerConfig,
        transport: Transport,
        state: ModelState,
        produce: Produce,
        *,
        now: Callable[[], float] = time.time,
        timeline: MembershipTimeline | None = None,
    ) -> None:
        """`timeline`: the membership of each round (shared with `produce`, refreshed by the
        composition root); without one, `config.validators` holds for every round."""
        self.config = config
        self.transport = transport
        self.state = state
        self.produce = produce
        self.now = now
        self.clock = config.clock
        # strangers (unregistered ids) share one small budget; members keep their own records
        self.gate = PeerGate(config.gate,
                             members=None if timeline is None else member_peers(timeline))
        self.counters = MinerCounters()
        self.timings = PhaseTimings()
        self.timeline = timeline
        self.follower = Follower(
            state, config.state_dir, network_id=config.network.network_id,
            validators=config.validators if timeline is None else timeline,
            max_envelope_bytes=config.network.max_message_bytes,
            latency=GossipLatency(config.network.round_length), now=now,
        )
        self.running = False
        """Subscribed and driving (see `ready`)."""
        self._waker = Waker()
        self._catch_up_log = CatchUp(config.peers, config.request_timeout_s)

    async def run(self) -> None:
        """Serve until cancelled."""
        self.transport.serve(LOG_PROTOCOL, log_handler(self.follower.store,
                                                       self.transport.limits.max_message_bytes))
        replayed = await self.follower.replay_local()
        if replayed:
            _log.info("replayed rounds %d..%d from the local log", replayed[0], replayed[-1])
        subscription = await self.transport.subscribe(TOPIC_BUNDLES)
        endorsements = await self.transport.subscribe(TOPIC_ENDORSEMENTS)
        if self.now() < self.clock.round_start(0):
            # the first run of the work is slow (allocations, kernels): pay for it before genesis
            await asyncio.to_thread(self.produce, self.state)
        self.running = True
        self._write_status()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._receive(subscription))
            group.create_task(self._receive_endorsements(endorsements))
            group.create_task(self._drive())

    async def _receive(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            if self.follower.receive(delivery.data, delivery.forwarder, self.gate, self.now(),
                                     delivery.from_peer):
                self._waker.set()

    async def _receive_endorsements(self, subscription: Subscription) -> None:
        async for delivery in subscription:
            if self.follower.receive_endorsement(delivery.data, delivery.forwarder, self.gate,
                                                 self.now(), delivery.from_peer):
                self._waker.set()

    async def _drive(self) -> None:
        while True:
            now = self.now()
            view = self._view()
            action = next_action(view, self.clock, now, self.config.patience)
            if action is MinerAction.APPLY:
                await self._apply()
            elif action is MinerAction.WORK:
                await self._work(self.clock.phase(now).round_index)
            elif action is MinerAction.CATCH_UP:
                await self._catch_up(now)
            else:
                await self._waker.sleep_until(wake_time(self.clock, now, self.config.patience),
                                              self.now())

    def _view(self) -> MinerView:
        at = self.state.round_index
        return MinerView(
            at_round=at,
            published_in=self.counters.published_in,
            next_bundle_ready=self.follower.ready(),
            last_catch_up=self._catch_up_log.last,
            finished=self.config.last_round is not None and at >= self.config.last_round,
        )

    async def _apply(self) -> None:
        with self.timings.timed("apply"):
            applied = await self.follower.advance()
        self.counters.applied += len(applied)
        self._log_finals(applied)
        self._write_status()

    def _log_finals(self, rounds: list[int]) -> None:
        """One line per round applied (see runtime.service_shell.final_round_line)."""
        for record in self.follower.finals:
            if record.round_index in rounds:
                sent = record.round_index == self.counters.last_published
                _log.info("%s", final_round_line(
                    record, self.clock, "this miner published to it" if sent
                    else "this miner did not publish to it"))

    async def _work(self, clock_round: int) -> None:
        self.counters.published_in = clock_round  # one attempt per clock round
        round_index = self.state.round_index
        if round_index == self.counters.last_published:
            # one signed contribution per round: a second one, even of the same work, is an
            # equivocation (protocol.equivocation) that every validator would penalize
            return
        started = time.perf_counter()
        sealed = await asyncio.to_thread(self.produce, self.state)
        self.counters.work_s += time.perf_counter() - started
        self.timings.add("work", time.perf_counter() - started)
        if not sealed:
            if self.counters.sat_out == 0:  # once: it says the same thing every round
                _log.warning("round %d: this miner is not registered for it (membership is the "
                             "Registry's snapshot at each epoch's start): following the network "
                             "until it is; register with `seedswarm join`", round_index)
            self.counters.sat_out += 1
            return
        if self.now() > self.clock.work_deadline(clock_round):
            self.counters.late += 1
            _log.warning("round %d: work finished after the deadline; not published", round_index)
            return
        try:
            await self.transport.publish(TOPIC_CONTRIBUTIONS, sealed)
        except TransportError as exc:
            _log.warning("round %d: publishing failed: %s", round_index, exc)
            return
        self.counters.published += 1
        self.counters.last_published = round_index
        self._write_status()

    async def _catch_up(self, now: float) -> None:
        self.counters.catch_ups += 1
        target = self.clock.phase(now).round_index
        with self.timings.timed("catch_up"):
            applied = await self._catch_up_log.run(self.follower, self.transport, target,
                                                   self.now)
        self.counters.caught_up_rounds += len(applied)
        if applied:
            _log.info("caught up rounds %d..%d from peers", applied[0], applied[-1])
            self._write_status()

    @property
    def catch_ups(self) -> int:
        """Times this node asked its peers for the certified log."""
        return self.counters.catch_ups

    def ready(self) -> bool:
        """Caught up with the certified history (runtime.service_shell.is_ready)."""
        return is_ready(self.running, self.state.round_index, self._catch_up_log.last,
                        self.clock, self.now(), self.config.patience)

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the miner's progress and protection counters."""
        c = self.counters
        now = self.now()
        last = self.follower.last_final
        return {
            "role": "miner",
            "peer_id": self.transport.peer_id,
            "time": now,
            "round": self.state.round_index,
            "clock_round": self.clock.phase(now).round_index,
            "ready": self.ready(),
            "model_hash": self.state.model_hash.hex(),
            "certified_hash": None if last is None else last.new_model_hash.hex(),
            "hash_agrees": self.follower.agrees(),
            "consensus_failures": self.follower.failures,
            "published": c.published,
            "late": c.late,
            "sat_out": c.sat_out,
            "applied": c.applied,
            "catch_ups": c.catch_ups,
            "caught_up_rounds": c.caught_up_rounds,
            "work_s": round(c.work_s, 4),
            "last_published": c.last_published,
            "timings": self.timings.snapshot(),
            "gate": self.gate.snapshot(),
            "transport": self.transport.stats.snapshot(),
        }

    def _write_status(self) -> None:
        write_status(self.config.status_file, self.status())
