"""What a validator's dashboard shows, as plain data (the page renders it; /api/dashboard
serves it as JSON for tools).

Everything comes from the running validator (its ledger, ratings, receipts, scoreboard,
follower) and, for stakes and payments, from the chain (seedswarm.launch.chain_view): a miner
sees its rating, its weight, what the chain paid it and why it scored what it did.
"""

from __future__ import annotations

import math
from typing import Any

from protocol.domain_types import PublicKey
from protocol.rounds import epoch_of
from seedswarm.launch.chain_view import ChainSnapshot, ChainView
from seedswarm.launch.node_metrics import miner_rating
from validator.receipts import reason_class
from validator.service.validator import ValidatorService

ETH = 10**18
TIMELINE_ROUNDS = 24
"""Rounds the timeline lists (the latest ones)."""
RECEIPTS_SHOWN = 8
"""Receipts listed per miner (the latest ones)."""


def dashboard_data(service: ValidatorService, chain: ChainView | None) -> dict[str, Any]:
    """The dashboard's content now (JSON-ready)."""
    s = service
    now = s.now()
    net = s.config.network
    snap = chain.snapshot if chain is not None else ChainSnapshot()
    clock_round = s.clock.phase(now).round_index
    last = s.follower.last_final
    return {
        "updated": now,
        "refresh_s": max(1.0, net.round_length / 2),
        "network": {
            "network_id": net.network_id, "round_length": net.round_length,
            "epoch_length": net.epoch_length, "clock_round": clock_round,
            "epoch": epoch_of(max(0, clock_round), net.epoch_length),
        },
        "validator": {"key": s.key.public.raw.hex(), "peer_id": s.transport.peer_id,
                      "round": s.engine.round_index, "ready": s.ready(),
                      "model_hash": s.engine.model_hash.hex(),
                      "hash_agrees": s.follower.agrees()},
        "health": _health(s, snap, last),
        "leaderboard": _leaderboard(s, snap, clock_round),
        "loss": [[r, v] for r, v in sorted(s.ledger.val_loss.items()) if math.isfinite(v)],
        "timeline": _timeline(s),
        "refusals": {
            "door": dict(sorted(s.pool.refused.items())),
            "scoring": dict(sorted(s.scoreboard.refusals.items())),
        },
        "epochs": {str(e): {"stage": r.stage, "reason": r.reason}
                   for e, r in sorted(s.ledger.epochs.items())},
    }


def _health(s: ValidatorService, snap: ChainSnapshot, last: Any) -> dict[str, Any]:
    stakes = {v.node_key: v.stake for v in snap.validators if v.node_key is not None}
    table = s.stakes_at(s.engine.round_index)
    validators = [{"key": key.hex(), "stake": stake / ETH,
                   "address": next((v.address for v in snap.validators if v.node_key == key),
                                   None)}
                  for key, stake in table]
    return {
        "validators": validators,
        "validators_on_chain": len(snap.validators),
        "stake_on_chain": sum(stakes.values()) / ETH,
        "last_final_round": None if last is None else last.round_index,
        "approving_share": (None if last is None or not last.total_stake
                            else last.approving_stake / last.total_stake),
        "approvers": [] if last is None else [v.hex() for v in last.approvers],
        "peers_heard": s.gate.active(s.now() - 3 * s.clock.round_length),
        "chain_read_at": snap.read_at or None,
        "chain_error": snap.error,
        "last_settled_epoch": snap.last_settled_epoch,
    }


def _leaderboard(s: ValidatorService, snap: ChainSnapshot, clock_round: int
                 ) -> list[dict[str, Any]]:
    """One row per registered miner (the chain's list, else the membership's), best first."""
    epoch = epoch_of(max(0, clock_round), s.config.network.epoch_length)
    record = s.ledger.epochs.get(epoch)
    scores = dict(record.scores) if record is not None else {}
    total = sum(v for v in scores.values() if v > 0)
    keys: list[PublicKey] = [m.node_key for m in snap.miners if m.node_key is not None]
    if not snap.read_at:
        keys = list(s.miners_at(s.engine.round_index))
    settled = snap.last_settled_epoch
    rows: list[tuple[tuple[float, float, str], dict[str, Any]]] = []
    for key in keys:
        hex_key = key.hex()
        onchain = snap.miner(key)
        rating = miner_rating(s, hex_key)
        receipt = s.scoreboard.latest_receipt(hex_key)
        score = scores.get(hex_key, 0.0)
        address = None if onchain is None else onchain.address
        reward = 0 if address is None else snap.reward_of(address, settled)
        earned = 0 if address is None else snap.total_of(address)
        claimed = 0 if address is None else int(snap.claimed.get(address, 0))
        rows.append(((-score, -rating.ordinal, hex_key), {
            "miner": hex_key, "address": address,
            "stake": None if onchain is None else onchain.stake / ETH,
            "score": score, "weight": max(0.0, score) / total if total > 0 else 0.0,
            "rating_mu": rating.mu, "rating_sigma": rating.sigma, "rating": rating.ordinal,
            "reward_epoch": settled, "reward": reward / ETH, "reward_wei": str(reward),
            "reward_total": earned / ETH, "reward_total_wei": str(earned),
            "claimed": claimed / ETH, "claimed_wei": str(claimed),
            "reason": None if receipt is None else receipt.reason,
            "reason_class": None if receipt is None else reason_class(receipt.reason),
            "reason_round": None if receipt is None else receipt.round_index,
            "refusals": dict(s.scoreboard.refusals_by_miner.get(hex_key, {})),
            "receipts": [_receipt(r) for r in
                         list(s.scoreboard.receipts.get(hex_key, ()))[-RECEIPTS_SHOWN:]][::-1],
        }))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def _receipt(r: Any) -> dict[str, Any]:
    return {"round": r.round_index, "weight_ppb": r.weight_ppb, "verified": r.verified,
            "filters_passed": r.filters_passed, "loss_delta_own": r.loss_delta_own,
            "loss_delta_random": r.loss_delta_random, "influence": r.influence,
            "rating_mu": r.rating_mu, "rating_sigma": r.rating_sigma, "reason": r.reason}


def _timeline(s: ValidatorService) -> list[dict[str, Any]]:
    rows = []
    for entry in list(s.scoreboard.rounds.values())[-TIMELINE_ROUNDS:][::-1]:
        start = s.clock.round_start(entry.round_index)
        rows.append({
            "round": entry.round_index, "received": entry.received, "accepted": entry.accepted,
            "refused": entry.refused, "certified": entry.certified, "leader": entry.leader,
            "approvers": list(entry.approvers), "approving_share": entry.approving_share,
            "scored_after_s": None if entry.scored_at is None else entry.scored_at - start,
            "final_after_s": None if entry.final_at is None else entry.final_at - start,
        })
    return rows
