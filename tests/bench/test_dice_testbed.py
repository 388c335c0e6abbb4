"""The DICE testbed at test size: estimators track counterfactual ground truth (16 nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import pytest
import torch

from bench.dice_testbed.analysis import find_outlier, summarize
from bench.dice_testbed.experiment import DiceConfig, Record, run_testbed
from bench.dice_testbed.topology import exponential, hop_distances, ring
from bench.dice_testbed.toy_swarm import Mode

PERMUTED = (5,)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # tiny models: intra-op threads only add spin-wait overhead
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@cache
def records(topology: str, mode: Mode) -> tuple[Record, ...]:
    lr = 0.05 if mode is Mode.SGD else 0.002
    cfg = DiceConfig(topology=topology, mode=mode, lr=lr, permuted=PERMUTED,
                        measure=4 if mode is Mode.SGD else 3)
    return tuple(run_testbed(cfg))


def test_topologies_are_row_stochastic_with_expected_hops() -> None:
    for w in (ring(16), exponential(16)):
        assert torch.allclose(w.sum(dim=1), torch.ones(16, dtype=torch.float64))
    assert hop_distances(ring(16))[0].tolist()[:4] == [0, 1, 2, 3]
    assert sorted(hop_distances(exponential(16))[0].tolist()).count(1) == 4  # i-1, -2, -4, -8


@pytest.mark.parametrize("topology", ["ring", "exponential"])
def test_sgd_estimators_track_ground_truth(topology: str) -> None:
    recs = records(topology, Mode.SGD)
    for hops in ((1,), (0, 1)):
        summary = summarize(recs, hops)
        assert summary.points == 16 * 4
        assert summary.pearson["exact"] >= 0.9
        assert summary.pearson["fd"] >= 0.9  # the validator's gradient-free form
        assert summary.spearman["fd"] >= 0.9


@pytest.mark.parametrize("topology", ["ring", "exponential"])
def test_influence_decays_with_hops(topology: str) -> None:
    recs = records(topology, Mode.SGD)
    truth = [summarize(recs, (s,)).mean_abs["truth"] for s in (1, 2, 3)]
    estimate = [summarize(recs, (s,)).mean_abs["fd"] for s in (1, 2, 3)]
    assert truth[0] > truth[1] > truth[2]
    assert estimate[0] > estimate[1] > estimate[2]


@pytest.mark.parametrize("topology", ["ring", "exponential"])
def test_permuted_label_node_is_the_harmful_outlier(topology: str) -> None:
    outlier = find_outlier(records(topology, Mode.SGD), PERMUTED)
    assert outlier.most_harmful == {"truth": 5, "exact": 5, "fd": 5}


@pytest.mark.parametrize("topology", ["ring", "exponential"])
def test_seed_form_tracks_ground_truth_of_spsa_updates(topology: str) -> None:
    recs = records(topology, Mode.SPSA)
    for hops in ((1,), (2,)):
        summary = summarize(recs, hops)
        assert summary.pearson["seed"] >= 0.9
        assert summary.spearman["seed"] >= 0.9


@pytest.mark.slow
def test_seed_form_finds_the_outlier_over_many_rounds() -> None:
    # one seed's influence is mostly noise (SNR ~ |cos(g_train, g_val)|): it takes rounds
    cfg = DiceConfig(topology="exponential", mode=Mode.SPSA, lr=0.002, hops=1, measure=40,
                     permuted=PERMUTED)
    outlier = find_outlier(run_testbed(cfg), PERMUTED)
    assert outlier.detected, outlier
