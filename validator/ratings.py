"""OpenSkill (Plackett-Luce) ratings of miners, one match per evaluation round, on disk.

Each round the evaluated miners play one free-for-all match ranked by their combined score;
their standing is the ordinal mu - 3 sigma, so a new miner starts at 0 and a lucky round
moves it little while sigma is large.

Constants (``RatingPolicy`` defaults), as Templar after tuning:

* ``beta = 7``: the performance noise per match. Templar went 100 -> 20 -> 7; a smaller beta
  moves mu more per match, so a good new miner climbs in a few rounds (about +1.8 ordinal per
  round as runner-up of ten against established miners).
* ``tau = 0.1``: added to sigma before every match so that sigma never collapses and a miner
  whose quality changes can still move.
* ``mu = 25``, ``sigma = 25 / 3``: openskill's defaults, ordinal 0 for a newcomer.

The store is written atomically (temporary file, fsync, rename) after every rated round and
remembers the last round it rated, so a validator that restarts mid-round neither loses nor
double-counts a match. Miners are keyed by string (e.g. the hex public key); teams are passed to
openskill in sorted key order so that every validator computes the same numbers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openskill.models import PlackettLuce

from protocol.errors import ConfigError

STORE_VERSION = 1


@dataclass(frozen=True)
class RatingPolicy:
    """OpenSkill model constants."""

    beta: float = 7.0
    tau: float = 0.1
    mu: float = 25.0
    sigma: float = 25.0 / 3.0

    def model(self) -> PlackettLuce:
        """The openskill model these constants describe."""
        return PlackettLuce(mu=self.mu, sigma=self.sigma, beta=self.beta, tau=self.tau)


@dataclass(frozen=True)
class Rating:
    """A miner's skill estimate."""

    mu: float
    sigma: float

    @property
    def ordinal(self) -> float:
        """The conservative skill mu - 3 sigma used for weights."""
        return self.mu - 3.0 * self.sigma


def match_ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Competition ranks (1 = best) by descending score; ties share a rank; non-finite last."""
    finite = [v for v in scores.values() if math.isfinite(v)]
    last = 1 + len(finite)
    return {
        k: 1 + sum(1 for v in finite if v > s) if math.isfinite(s) else last
        for k, s in scores.items()
    }


@dataclass
class RatingStore:
    """Ratings of all miners, optionally persisted to ``path`` (JSON)."""

    policy: RatingPolicy = field(default_factory=RatingPolicy)
    path: Path | None = None
    ratings: dict[str, Rating] = field(default_factory=dict)
    last_rated_round: int | None = None

    def get(self, miner: str) -> Rating:
        """The miner's rating (the prior for an unknown miner)."""
        return self.ratings.get(miner, Rating(self.policy.mu, self.policy.sigma))

    def reset(self, miner: str) -> None:
        """Forget a miner's rating (e.g. after a long absence); saved immediately."""
        if self.ratings.pop(miner, None) is not None:
            self.save()

    def rate_round(self, round_index: int, scores: Mapping[str, float]) -> bool:
        """Play one match among the miners in ``scores`` (higher is better) and save.

        Does nothing and returns False when fewer than two miners were evaluated or the round
        was already rated (a replay after a restart); returns True when ratings changed.
        """
        if self.last_rated_round is not None and round_index <= self.last_rated_round:
            return False
        if len(scores) < 2:
            return False
        model = self.policy.model()
        keys = sorted(scores)
        ranks = match_ranks(scores)
        teams = [[model.rating(mu=self.get(k).mu, sigma=self.get(k).sigma)] for k in keys]
        rated = model.rate(teams, ranks=[float(ranks[k]) for k in keys])
        for key, team in zip(keys, rated, strict=True):
            self.ratings[key] = Rating(mu=float(team[0].mu), sigma=float(team[0].sigma))
        self.last_rated_round = round_index
        self.save()
        return True

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready snapshot (floats round-trip exactly through ``json``)."""
        return {
            "version": STORE_VERSION,
            "policy": {"beta": self.policy.beta, "tau": self.policy.tau,
                       "mu": self.policy.mu, "sigma": self.policy.sigma},
            "last_rated_round": self.last_rated_round,
            "ratings": {k: [r.mu, r.sigma] for k, r in sorted(self.ratings.items())},
        }

    def save(self) -> None:
        """Write the store atomically to ``path`` (no-op without a path)."""
        if self.path is None:
            return
        write_json_atomic(self.path, self.to_json())

    @classmethod
    def load(cls, path: Path, policy: RatingPolicy | None = None) -> RatingStore:
        """The store saved at ``path``, or an empty one bound to ``path`` if it does not exist.

        Raises ConfigError if the file is unreadable or its policy differs from ``policy``.
        """
        if not path.exists():
            return cls(policy=policy or RatingPolicy(), path=path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            stored = RatingPolicy(**data["policy"])
            ratings = {str(k): Rating(float(v[0]), float(v[1])) for k, v in data["ratings"].items()}
            last = data["last_rated_round"]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"cannot read rating store {path}: {exc}") from exc
        if data.get("version") != STORE_VERSION:
            raise ConfigError(f"rating store {path} has unknown version {data.get('version')}")
        if policy is not None and policy != stored:
            raise ConfigError(f"rating store {path} was written with {stored}, not {policy}")
        return cls(policy=stored, path=path, ratings=ratings,
                   last_rated_round=None if last is None else int(last))


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as JSON so that ``path`` holds either the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
