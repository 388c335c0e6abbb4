"""The live validator's scoring: the simulator's `ScoringCertifier`, persisted in the state dir.

A live leader scores with exactly the pipeline the simulator runs (one code path). What the
pipeline remembers between rounds (per-miner books, audit trust, bans, the cascade history) is
written next to the checkpoint after every certified round, and its ratings live in their own
auto-saving store, so a restarted validator keeps judging miners as before.
"""

from __future__ import annotations

import json
from pathlib import Path

from adapters.storage.logstore import write_atomic
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from protocol.netconfig import NetworkConfig
from validator.ratings import RatingStore
from validator.scorer import ScoringCertifier
from validator.service.receipt_server import REMEMBERED_ROUNDS

PIPELINE_STATE = "scoring-state.json"
PIPELINE_RATINGS = "scoring-ratings.json"
KEPT_ROUNDS = REMEMBERED_ROUNDS
"""Rounds whose pipeline receipts a live validator keeps in memory (as its receipt service)."""


def scoring_certifier(
    network: NetworkConfig, key: NodeKey, state_dir: Path | None = None
) -> ScoringCertifier:
    """The validator pipeline under ``key``, restored from ``state_dir`` when it holds a state."""
    if state_dir is None:
        return ScoringCertifier(network, key, keep_rounds=KEPT_ROUNDS)
    ratings = RatingStore.load(state_dir / PIPELINE_RATINGS)
    certifier = ScoringCertifier(network, key, ratings=ratings, keep_rounds=KEPT_ROUNDS)
    load_scoring(certifier, state_dir)
    return certifier


def save_scoring(certifier: ScoringCertifier, state_dir: Path) -> None:
    """Write the pipeline's books and history atomically (ratings save themselves)."""
    data = json.dumps(certifier.pipeline.state_to_json(), sort_keys=True).encode()
    write_atomic(state_dir / PIPELINE_STATE, data)


def load_scoring(certifier: ScoringCertifier, state_dir: Path) -> bool:
    """Restore the pipeline's books and history from ``state_dir``; False if none was saved."""
    path = state_dir / PIPELINE_STATE
    if not path.exists():
        return False
    try:
        certifier.pipeline.load_state(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the scoring state {path}: {exc}") from exc
    return True
