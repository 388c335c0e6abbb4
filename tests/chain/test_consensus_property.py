"""The contract's consensus weight equals the Python reference on generated inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from protocol.settlement.median import consensus_weight
from tests.chain.harness import Net, make_net

pytestmark = pytest.mark.chain

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
weights_and_stakes = st.integers(1, 8).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 65_535), min_size=n, max_size=n),
        st.lists(st.integers(1, 10**24), min_size=n, max_size=n),
    )
)


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3, miners=0, validator_stakes=())


@SETTINGS
@given(case=weights_and_stakes, kappa=st.sampled_from([5_000, 5_000, 1, 3_333, 9_999]))
def test_onchain_median_equals_reference(
    net: Net, case: tuple[list[int], list[int]], kappa: int
) -> None:
    weights, stakes = case
    onchain = net.suite.incentives.consensus_weight(weights, stakes, kappa)
    assert onchain == consensus_weight(weights, stakes, kappa)


@SETTINGS
@given(
    honest=st.lists(
        st.tuples(st.integers(0, 65_535), st.integers(1, 10**6)), min_size=1, max_size=6
    ),
    attack=st.integers(0, 65_535),
    share=st.floats(0.0, 0.999),
)
def test_minority_cannot_raise_consensus_above_honest_weights(
    net: Net, honest: list[tuple[int, int]], attack: int, share: float
) -> None:
    honest_stake = sum(s for _, s in honest)
    attacker_stake = int(honest_stake * share)  # strictly less than the honest stake
    weights = [w for w, _ in honest] + [attack]
    stakes = [s for _, s in honest] + [attacker_stake]
    onchain = net.suite.incentives.consensus_weight(weights, stakes, 5_000)
    assert onchain <= max(w for w, _ in honest)
