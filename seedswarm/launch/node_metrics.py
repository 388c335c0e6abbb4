"""A node's Prometheus metrics, read from the running service at each scrape.

Nothing is pushed or double-booked: a scrape asks the service (miner or validator), its
follower, gate, transport, scoreboard and ledger, and the chain view for their current values
and turns them into metric families, so the metrics always agree with the status file. Every
name starts with `seedswarm_`; counters end in `_total`, seconds are seconds, SEED amounts
are whole tokens (wei / 1e18).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from eth_utils.address import to_checksum_address
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from node.service.miner import MinerService
from protocol.domain_types import EvmAddress
from protocol.rounds import epoch_of
from seedswarm.launch.chain_view import ChainView
from validator.ratings import Rating
from validator.service.validator import ValidatorService

ETH = 10**18
ACTIVE_PEER_ROUNDS = 3
"""A peer counts as heard from if it sent anything in this many recent rounds."""

METRICS: dict[str, str] = {
    "seedswarm_node_info": "The node: its role, peer id and network (value 1).",
    "seedswarm_round": "The round whose certified model the replica holds (the next to train).",
    "seedswarm_clock_round": "The round the network's clock is in.",
    "seedswarm_ready": "1 when caught up with the certified history (what /readyz answers).",
    "seedswarm_model_hash_agreement": "1 when the replica's model hash is the hash the latest "
                                      "final certificate names, 0 when not.",
    "seedswarm_consensus_failures_total": "Final rounds whose model hash did not reproduce.",
    "seedswarm_rounds_applied_total": "Final rounds applied since start, by how they came.",
    "seedswarm_last_final_round": "The latest round this node applied.",
    "seedswarm_last_final_approving_stake_ratio": "Share of the stake that approved it.",
    "seedswarm_round_final_delay_seconds": "From the start of the latest final round to when "
                                           "this node applied it.",
    "seedswarm_contributions_certified_total": "Contributions in the final certificates "
                                               "applied.",
    "seedswarm_catch_ups_total": "Times the node asked its peers for the certified log.",
    "seedswarm_gossip_latency_seconds": "Age of gossiped certificates and endorsements on "
                                        "arrival (signing to receipt).",
    "seedswarm_peers_heard": "Peers that sent this node anything in the last three rounds.",
    "seedswarm_peers_connected": "Connected transport peers (libp2p).",
    "seedswarm_transport_messages_total": "Gossip messages published and delivered.",
    "seedswarm_transport_bytes_total": "Gossip bytes published and delivered.",
    "seedswarm_transport_dropped_total": "Messages the transport dropped, by reason.",
    "seedswarm_gate_refused_total": "Inbound messages refused per peer protection, by reason.",
    "seedswarm_gate_bans_total": "Peers banned for repeated invalid messages.",
    "seedswarm_round_phase_seconds": "Time spent per phase of a round's work.",
    "seedswarm_contributions_published_total": "Miner: contributions published.",
    "seedswarm_contributions_late_total": "Miner: work finished after the deadline.",
    "seedswarm_rounds_sat_out_total": "Miner: rounds it was not registered for.",
    "seedswarm_reward_total_seed": "Miner: SEED this node's account was paid, all epochs.",
    "seedswarm_reward_last_epoch_seed": "Miner: SEED paid for the last settled epoch.",
    "seedswarm_claimed_seed": "Miner: SEED this node's account has claimed.",
    "seedswarm_last_settled_epoch": "The last epoch that paid miners on-chain.",
    "seedswarm_contributions_received_total": "Validator: deliveries on the contributions "
                                              "topic.",
    "seedswarm_contributions_refused_total": "Validator: contributions refused, by stage "
                                             "(door: envelope, replay, membership, peer "
                                             "limits; scoring: no reward) and reason.",
    "seedswarm_contributions_accepted_total": "Validator: contributions its own decision "
                                              "would certify.",
    "seedswarm_certificates_signed_total": "Validator: certificates it signed as leader.",
    "seedswarm_endorsements_published_total": "Validator: its endorsements, by vote.",
    "seedswarm_validation_loss": "Validator: validation loss of the latest final model.",
    "seedswarm_miner_score": "Validator: each miner's accumulated score in the current epoch.",
    "seedswarm_miner_weight": "Validator: each miner's share of the current epoch's scores.",
    "seedswarm_miner_rating_mu": "Validator: OpenSkill mu of each miner.",
    "seedswarm_miner_rating_sigma": "Validator: OpenSkill sigma of each miner.",
    "seedswarm_miner_rating_ordinal": "Validator: OpenSkill ordinal (mu - 3 sigma).",
    "seedswarm_miner_stake_seed": "Validator: each registered miner's stake.",
    "seedswarm_miner_reward_seed": "Validator: each miner's on-chain reward for the last "
                                   "settled epoch.",
    "seedswarm_miner_reward_total_seed": "Validator: each miner's on-chain rewards, all "
                                         "epochs.",
    "seedswarm_miner_claimed_seed": "Validator: what each miner has claimed.",
    "seedswarm_epochs": "Validator: its epochs by on-chain stage (open, committed, revealed, "
                        "settled, skipped, failed).",
    "seedswarm_chain_transactions_total": "Validator: on-chain epoch steps by step and "
                                          "result.",
    "seedswarm_chain_errors_total": "Validator: chain calls that failed.",
    "seedswarm_validators": "Registered validators.",
    "seedswarm_validator_stake_seed": "Total stake of the registered validators.",
    "seedswarm_chain_view_age_seconds": "Seconds since the chain was last read.",
}
"""Every metric a node may serve, with its help text (the README lists the same)."""

Service = MinerService | ValidatorService


class NodeCollector(Collector):
    """Metric families of one node; see the module docstring."""

    def __init__(self, service: Service, network_id: str, chain: ChainView | None = None,
                 own_address: str | None = None) -> None:
        self.service = service
        self.network_id = network_id
        self.chain = chain
        self.own_address = own_address

    def collect(self) -> Iterator[Metric]:
        yield from self._common()
        if isinstance(self.service, MinerService):
            yield from self._miner(self.service)
        else:
            yield from self._validator(self.service)
        yield from self._chain()

    # -- every node -----------------------------------------------------------------------

    def _common(self) -> Iterator[Metric]:
        s = self.service
        role = "miner" if isinstance(s, MinerService) else "validator"
        info = _gauge("seedswarm_node_info", labels=["role", "peer_id", "network"])
        info.add_metric([role, s.transport.peer_id, self.network_id], 1)
        yield info
        now = s.now()
        follower = s.follower
        yield _gauge("seedswarm_round", follower.replica.round_index)
        yield _gauge("seedswarm_clock_round", s.clock.phase(now).round_index)
        yield _gauge("seedswarm_ready", 1 if s.ready() else 0)
        agrees = follower.agrees()
        if agrees is not None:
            yield _gauge("seedswarm_model_hash_agreement", 1 if agrees else 0)
        yield _counter("seedswarm_consensus_failures_total", follower.failures)
        applied = _counter("seedswarm_rounds_applied_total", labels=["via"])
        for via in ("gossip", "catch-up", "log"):
            applied.add_metric([via], follower.applied_via.get(via, 0))
        yield applied
        last = follower.last_final
        if last is not None:
            yield _gauge("seedswarm_last_final_round", last.round_index)
            share = last.approving_stake / last.total_stake if last.total_stake else 0.0
            yield _gauge("seedswarm_last_final_approving_stake_ratio", share)
            yield _gauge("seedswarm_round_final_delay_seconds",
                         last.applied_at - s.clock.round_start(last.round_index))
        yield _counter("seedswarm_contributions_certified_total",
                       follower.certified_contributions)
        yield _counter("seedswarm_catch_ups_total", s.catch_ups)
        if follower.latency is not None:
            latency = HistogramMetricFamily("seedswarm_gossip_latency_seconds",
                                            METRICS["seedswarm_gossip_latency_seconds"],
                                            labels=["kind"])
            for kind, hist in sorted(follower.latency.kinds.items()):
                buckets = [(_bound(b), n) for b, n in hist.buckets()]
                latency.add_metric([kind], buckets, sum_value=hist.total)
            yield latency
        horizon = now - ACTIVE_PEER_ROUNDS * s.clock.round_length
        yield _gauge("seedswarm_peers_heard", s.gate.active(horizon))
        connected = getattr(s.transport, "connected_peers", None)
        if callable(connected):
            yield _gauge("seedswarm_peers_connected", len(connected()))
        stats = s.transport.stats.snapshot()
        messages = _counter("seedswarm_transport_messages_total", labels=["direction"])
        volume = _counter("seedswarm_transport_bytes_total", labels=["direction"])
        for direction in ("published", "delivered"):
            messages.add_metric([direction], stats[direction])
            volume.add_metric([direction], stats[f"bytes_{direction}"])
        yield messages
        yield volume
        dropped = _counter("seedswarm_transport_dropped_total", labels=["reason"])
        for key, value in sorted(stats.items()):
            if key.startswith("dropped_"):
                dropped.add_metric([key.removeprefix("dropped_")], value)
        yield dropped
        refused = _counter("seedswarm_gate_refused_total", labels=["reason"])
        for reason, count in sorted(s.gate.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        yield _counter("seedswarm_gate_bans_total", s.gate.bans)
        phases = SummaryMetricFamily("seedswarm_round_phase_seconds",
                                     METRICS["seedswarm_round_phase_seconds"], labels=["phase"])
        for phase, (count, total) in sorted(s.timings.phases.items()):
            phases.add_metric([phase], count_value=count, sum_value=total)
        yield phases

    # -- miners ---------------------------------------------------------------------------

    def _miner(self, s: MinerService) -> Iterator[Metric]:
        c = s.counters
        yield _counter("seedswarm_contributions_published_total", c.published)
        yield _counter("seedswarm_contributions_late_total", c.late)
        yield _counter("seedswarm_rounds_sat_out_total", c.sat_out)
        if self.chain is None or self.own_address is None or not self.chain.snapshot.read_at:
            return
        snap = self.chain.snapshot
        me = EvmAddress(to_checksum_address(self.own_address))
        yield _gauge("seedswarm_reward_total_seed", snap.total_of(me) / ETH)
        yield _gauge("seedswarm_reward_last_epoch_seed",
                     snap.reward_of(me, snap.last_settled_epoch) / ETH)
        yield _gauge("seedswarm_claimed_seed", snap.claimed.get(me, 0) / ETH)

    # -- validators -----------------------------------------------------------------------

    def _validator(self, s: ValidatorService) -> Iterator[Metric]:
        board = s.scoreboard
        yield _counter("seedswarm_contributions_received_total", s.pool.received)
        refused = _counter("seedswarm_contributions_refused_total", labels=["stage", "reason"])
        for reason, count in sorted(s.pool.refused.items()):
            refused.add_metric(["door", reason], count)
        for reason, count in sorted(board.refusals.items()):
            refused.add_metric(["scoring", reason], count)
        yield refused
        yield _counter("seedswarm_contributions_accepted_total", board.accepted)
        yield _counter("seedswarm_certificates_signed_total", s.certified)
        votes = _counter("seedswarm_endorsements_published_total", labels=["vote"])
        votes.add_metric(["approve"], s.approvals)
        votes.add_metric(["dispute"], s.disputed)
        yield votes
        losses = s.ledger.val_loss
        if losses:
            yield _gauge("seedswarm_validation_loss", losses[max(losses)])
        yield from self._miner_books(s)
        stages = _gauge("seedswarm_epochs", labels=["stage"])
        counts: dict[str, int] = {}
        for record in s.ledger.epochs.values():
            counts[record.stage] = counts.get(record.stage, 0) + 1
        for stage in ("open", "committed", "revealed", "settled", "skipped", "failed"):
            stages.add_metric([stage], counts.get(stage, 0))
        yield stages
        steps = _counter("seedswarm_chain_transactions_total", labels=["step", "result"])
        for (step, result), count in sorted(board.chain_steps.items()):
            steps.add_metric([step, result], count)
        yield steps
        yield _counter("seedswarm_chain_errors_total", s.chain_errors)

    def _miner_books(self, s: ValidatorService) -> Iterator[Metric]:
        epoch = epoch_of(max(0, s.clock.phase(s.now()).round_index),
                         s.config.network.epoch_length)
        record = s.ledger.epochs.get(epoch)
        scores = dict(record.scores) if record is not None else {}
        total = sum(v for v in scores.values() if v > 0)
        miners = sorted(set(scores) | set(s.ratings.ratings) | set(board_miners(s)))
        score = _gauge("seedswarm_miner_score", labels=["miner"])
        weight = _gauge("seedswarm_miner_weight", labels=["miner"])
        mu = _gauge("seedswarm_miner_rating_mu", labels=["miner"])
        sigma = _gauge("seedswarm_miner_rating_sigma", labels=["miner"])
        ordinal = _gauge("seedswarm_miner_rating_ordinal", labels=["miner"])
        for miner in miners:
            value = scores.get(miner, 0.0)
            score.add_metric([miner], value)
            weight.add_metric([miner], max(0.0, value) / total if total > 0 else 0.0)
            rating = miner_rating(s, miner)
            mu.add_metric([miner], rating.mu)
            sigma.add_metric([miner], rating.sigma)
            ordinal.add_metric([miner], rating.ordinal)
        yield from (score, weight, mu, sigma, ordinal)

    # -- the chain ------------------------------------------------------------------------

    def _chain(self) -> Iterator[Metric]:
        if self.chain is None:
            return
        snap = self.chain.snapshot
        if not snap.read_at:
            return
        yield _gauge("seedswarm_chain_view_age_seconds", time.time() - snap.read_at)
        if snap.last_settled_epoch is not None:
            yield _gauge("seedswarm_last_settled_epoch", snap.last_settled_epoch)
        yield _gauge("seedswarm_validators", len(snap.validators))
        yield _gauge("seedswarm_validator_stake_seed",
                     sum(v.stake for v in snap.validators) / ETH)
        if not isinstance(self.service, ValidatorService):
            return
        stake = _gauge("seedswarm_miner_stake_seed", labels=["miner", "address"])
        reward = _gauge("seedswarm_miner_reward_seed", labels=["miner", "address"])
        total = _gauge("seedswarm_miner_reward_total_seed", labels=["miner", "address"])
        claimed = _gauge("seedswarm_miner_claimed_seed", labels=["miner", "address"])
        for m in snap.miners:
            labels = ["" if m.node_key is None else m.node_key.hex(), m.address]
            stake.add_metric(labels, m.stake / ETH)
            reward.add_metric(labels, snap.reward_of(m.address, snap.last_settled_epoch) / ETH)
            total.add_metric(labels, snap.total_of(m.address) / ETH)
            claimed.add_metric(labels, snap.claimed.get(m.address, 0) / ETH)
        yield from (stake, reward, total, claimed)


def board_miners(s: ValidatorService) -> list[str]:
    """Miners this validator issued receipts to (hex keys)."""
    return list(s.scoreboard.receipts)


def miner_rating(s: ValidatorService, miner_hex: str) -> Rating:
    """The rating that explains the miner's score: the latest receipt's (the scoring
    pipeline's), else the validator's own rating store."""
    receipt = s.scoreboard.latest_receipt(miner_hex)
    if receipt is not None:
        return Rating(receipt.rating_mu, receipt.rating_sigma)
    return s.ratings.get(miner_hex)


def registry(collector: NodeCollector) -> CollectorRegistry:
    """A registry holding only this node's metrics (not the process-global default one)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _gauge(name: str, value: float | None = None, *, labels: list[str] | None = None
           ) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, METRICS[name], value=value, labels=labels)


def _counter(name: str, value: float | None = None, *, labels: list[str] | None = None
             ) -> CounterMetricFamily:
    # prometheus_client appends "_total" to a counter's samples itself
    return CounterMetricFamily(name.removesuffix("_total"), METRICS[name], value=value,
                               labels=labels)

