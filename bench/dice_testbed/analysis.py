"""Summaries of testbed records: correlation per hop, decay with hops, the harmful outlier."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bench.dice_testbed.experiment import Record
from bench.dice_testbed.rank_stats import pearson, spearman

TRUTH = "truth"


@dataclass(frozen=True)
class HopSummary:
    """Estimate-versus-truth agreement over the hops in ``hops``.

    One point per (round, source): the influence summed over receivers at those hops, as DICE
    defines the influence of one node's batch. ``mean_abs`` is per (source, receiver) pair.
    """

    hops: tuple[int, ...]
    points: int
    pearson: dict[str, float]
    spearman: dict[str, float]
    mean_abs: dict[str, float]


@dataclass(frozen=True)
class OutlierSummary:
    """The most harmful source (largest mean one-hop influence) by each quantity."""

    expected: tuple[int, ...]
    most_harmful: dict[str, int]

    @property
    def detected(self) -> bool:
        """Truth and every estimator name an expected node as the most harmful."""
        return all(node in self.expected for node in self.most_harmful.values())


def _names(records: Sequence[Record]) -> list[str]:
    return [TRUTH, *records[0].estimates] if records else [TRUTH]


def _value(record: Record, name: str) -> float:
    return record.truth if name == TRUTH else record.estimates[name]


def summarize(records: Sequence[Record], hops: tuple[int, ...]) -> HopSummary:
    """Per-source correlations and mean magnitudes over ``hops``."""
    chosen = [r for r in records if r.hop in hops]
    names = _names(chosen)
    sums: dict[tuple[int, int], dict[str, float]] = defaultdict(lambda: dict.fromkeys(names, 0.0))
    for r in chosen:
        for name in names:
            sums[(r.round_index, r.source)][name] += _value(r, name)
    points = list(sums.values())
    truth = [p[TRUTH] for p in points]
    estimators = [n for n in names if n != TRUTH]
    ok = len(points) >= 2
    return HopSummary(
        hops=hops,
        points=len(points),
        pearson={n: pearson(truth, [p[n] for p in points]) if ok else float("nan")
                 for n in estimators},
        spearman={n: spearman(truth, [p[n] for p in points]) if ok else float("nan")
                  for n in estimators},
        mean_abs={n: sum(abs(_value(r, n)) for r in chosen) / max(1, len(chosen))
                  for n in names},
    )


def source_influence(records: Sequence[Record], hops: tuple[int, ...] = (0, 1)) -> dict[
    str, dict[int, float]
]:
    """Mean over rounds of each source's influence summed over ``hops`` (default: DICE one-hop,
    self term plus direct neighbours)."""
    chosen = [r for r in records if r.hop in hops]
    names = _names(chosen)
    rounds = {r.round_index for r in chosen} or {0}
    totals: dict[str, dict[int, float]] = {n: defaultdict(float) for n in names}
    for r in chosen:
        for n in names:
            totals[n][r.source] += _value(r, n) / len(rounds)
    return {n: dict(v) for n, v in totals.items()}


def find_outlier(records: Sequence[Record], expected: tuple[int, ...]) -> OutlierSummary:
    """Which source has the most positive (harmful) mean one-hop influence, by each quantity."""
    per_name = source_influence(records)
    return OutlierSummary(
        expected=expected,
        most_harmful={n: max(v, key=lambda j: (v[j], -j)) for n, v in per_name.items() if v},
    )
