"""Direct settlement: Yuma-style consensus, clipping, emission split, claims; both backends."""

from __future__ import annotations

import random

import pytest
from web3 import Web3

from adapters.chain.chain_errors import ChainRevert
from protocol.settlement.median import settle_reference
from protocol.settlement.params import EpochStatus
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import EMISSION, ETH, Net, make_net

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3, miners=5)


def _random_rows(seed: int, miners: int, validators: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [normalize_weights([rng.random() for _ in range(miners)]) for _ in range(validators)]


def _claimables(net: Net) -> list[int]:
    return [c.incentives.claimable() for c in net.miners + net.validators]


def _gains(net: Net, epoch: int, rows: list[tuple[int, ...]], chunk: int = 0) -> list[int]:
    before = _claimables(net)
    who = net.validators[: len(rows)]
    net.goto_commit(epoch)
    net.commit(epoch, rows, who)
    net.goto_reveal(epoch)
    net.reveal(epoch, rows, who)
    net.goto_settle(epoch)
    net.suite.incentives.settle(epoch, chunk)
    return [a - b for a, b in zip(_claimables(net), before, strict=True)]


def test_settlement_matches_reference(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    rows = _random_rows(1, len(net.miners), len(net.validators))
    with pytest.raises(ChainRevert, match="SettlementNotOpen"):
        net.suite.incentives.settle(epoch)
    gains = _gains(net, epoch, rows)
    expected = settle_reference(rows, net.stakes(), len(net.miners), EMISSION)
    assert gains == list(expected.miner_rewards + expected.validator_rewards)
    assert 0 < sum(gains) <= EMISSION
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.SETTLED
    assert net.suite.incentives.miner_performances() == expected.performance
    with pytest.raises(ChainRevert, match="EpochAlreadySettled"):
        net.suite.incentives.settle(epoch)


def test_chunked_settlement_credits_the_same(net: Net) -> None:
    rows = _random_rows(2, len(net.miners), len(net.validators))
    epoch = net.suite.registry.current_epoch()
    whole = _gains(net, epoch, rows)
    chunked = _gains(net, epoch + 1, rows, chunk=2)
    assert chunked == whole


def test_claim_mints_once(net: Net) -> None:
    miner = net.miners[0]
    owed = miner.incentives.claimable()
    assert owed > 0
    miner.incentives.claim()
    assert miner.token_balance() == owed
    assert miner.incentives.claimable() == 0
    with pytest.raises(ChainRevert) as info:
        miner.incentives.claim()
    assert info.value.error_name == "NothingToClaim"
    assert miner.token_balance() == owed


def test_without_quorum_nothing_is_paid(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    lone = net.validators[0]  # 1 of 6 ETH
    gains = _gains(net, epoch, _random_rows(3, len(net.miners), 1)[:1])
    assert lone.incentives.commitment(epoch).revealed
    assert gains == [0] * len(gains)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.NO_QUORUM


def test_dishonest_minority_cannot_lift_a_miner_above_consensus(w3: Web3) -> None:
    # Validator 0 holds 4.9 of 9.9 ETH (< 50%) and puts all its weight on miner 0.
    net = make_net(w3, miners=4, validator_stakes=(49 * ETH // 10, 2 * ETH, 3 * ETH))
    honest = normalize_weights([1, 2, 3, 4])
    target = 0
    epoch = net.suite.registry.current_epoch()
    fair = _gains(net, epoch, [honest, honest, honest])
    boosted_row = tuple([65_535] + [0] * (len(net.miners) - 1))
    attacked = _gains(net, epoch + 1, [boosted_row, honest, honest])
    assert attacked[target] == fair[target]
    assert attacked[target] <= EMISSION // 2 * honest[target] // 65_535
    # Weight the attacker withheld from the others is not redistributed to the target...
    assert all(a <= f for a, f in zip(attacked[:4], fair[:4], strict=True))
    # ...and the attacker's own validator reward falls with its agreement.
    assert attacked[4] < fair[4]
