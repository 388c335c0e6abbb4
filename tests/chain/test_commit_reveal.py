"""Commit / reveal rules of the Incentives contract, on both backends."""

from __future__ import annotations

import pytest
from web3 import Web3

from adapters.chain.chain_errors import ChainRevert
from protocol.settlement.median import settle_reference
from protocol.settlement.weight_vector import commit_digest, normalize_weights
from tests.chain.harness import EMISSION, SALT, Net, make_net

pytestmark = pytest.mark.chain

ROWS = [
    normalize_weights([1, 2, 3, 4]),
    normalize_weights([4, 3, 2, 1]),
    normalize_weights([1, 1, 1, 1]),
]


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3)


def _claimables(net: Net) -> list[int]:
    return [c.incentives.claimable() for c in net.miners + net.validators]


def test_non_validator_cannot_commit(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    net.goto_commit(epoch)
    miner = net.miners[0]
    with pytest.raises(ChainRevert) as info:
        miner.incentives.commit(epoch, commit_digest(epoch, miner.address, ROWS[0], SALT))
    assert info.value.error_name == "NotValidator"
    assert Web3.to_checksum_address(info.value.error_args[0]) == miner.address
    outsider = net.join()
    with pytest.raises(ChainRevert, match="NotValidator"):
        outsider.incentives.commit(epoch, commit_digest(epoch, outsider.address, ROWS[0], SALT))


def test_commit_only_inside_its_window_and_once(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    v = net.validators[0]
    digest = commit_digest(epoch, v.address, ROWS[0], SALT)
    with pytest.raises(ChainRevert) as early:
        v.incentives.commit(epoch, digest)
    assert early.value.error_name == "CommitWindowNotOpen"
    net.goto_commit(epoch)
    v.incentives.commit(epoch, digest)
    with pytest.raises(ChainRevert, match="AlreadyCommitted"):
        v.incentives.commit(epoch, digest)
    net.goto_reveal(epoch)
    with pytest.raises(ChainRevert, match="CommitWindowClosed"):
        net.validators[1].incentives.commit(epoch, digest)


def test_reveal_must_match_commit(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    v = net.validators[1]
    net.goto_commit(epoch)
    net.commit(epoch, [ROWS[1]], [v])
    with pytest.raises(ChainRevert, match="RevealWindowNotOpen"):
        v.incentives.reveal(epoch, ROWS[1], SALT)
    net.goto_reveal(epoch)
    with pytest.raises(ChainRevert) as other_weights:
        v.incentives.reveal(epoch, ROWS[0], SALT)
    assert other_weights.value.error_name == "RevealMismatch"
    committed, revealed = other_weights.value.error_args
    assert committed == commit_digest(epoch, v.address, ROWS[1], SALT) != revealed
    with pytest.raises(ChainRevert, match="RevealMismatch"):
        v.incentives.reveal(epoch, ROWS[1], b"\x01" * 32)
    with pytest.raises(ChainRevert, match="WeightsNotNormalized"):
        v.incentives.reveal(epoch, [1, 2, 3], SALT)
    assert not v.incentives.commitment(epoch).revealed
    v.incentives.reveal(epoch, ROWS[1], SALT)
    assert v.incentives.revealed_weights(epoch) == ROWS[1]
    with pytest.raises(ChainRevert, match="AlreadyRevealed"):
        v.incentives.reveal(epoch, ROWS[1], SALT)


def test_late_reveal_is_rejected_and_left_out_of_settlement(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    late, *punctual = net.validators
    net.goto_commit(epoch)
    net.commit(epoch, ROWS, net.validators)
    net.goto_reveal(epoch)
    net.reveal(epoch, ROWS[1:], punctual)
    net.goto_settle(epoch)
    with pytest.raises(ChainRevert, match="RevealWindowClosed"):
        late.incentives.reveal(epoch, ROWS[0], SALT)
    before = _claimables(net)
    net.suite.incentives.settle(epoch)
    gained = [a - b for a, b in zip(_claimables(net), before, strict=True)]
    stakes = [v.registry.stake_of() for v in punctual]
    expected = settle_reference(ROWS[1:], stakes, len(net.miners), EMISSION)
    assert gained[: len(net.miners)] == list(expected.miner_rewards)
    assert gained[len(net.miners) :] == [0, *expected.validator_rewards]
