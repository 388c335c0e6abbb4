"""Merkle-root settlement: stake-majority root, proofs, forged proofs; both backends."""

from __future__ import annotations

import pytest
from web3 import Web3

from adapters.chain.chain_errors import ChainRevert
from protocol.settlement.merkle import RewardTree, build_reward_tree
from protocol.settlement.params import EpochStatus
from tests.chain.harness import EMISSION, ETH, Net, make_net

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3, miners=5)


@pytest.fixture(scope="module")
def tree(net: Net) -> RewardTree:
    rewards = {m.address: (i + 1) * 10 * ETH for i, m in enumerate(net.miners)}
    rewards[net.validators[2].address] = 7 * ETH
    return build_reward_tree(net.suite.registry.current_epoch(), rewards)


def test_root_needs_a_stake_majority(net: Net, tree: RewardTree) -> None:
    epoch = tree.epoch
    big, small = net.validators[2], net.validators[0]  # 3 and 1 of 6 ETH
    with pytest.raises(ChainRevert, match="EpochNotEnded"):
        big.incentives.propose_root(epoch, tree.root, tree.total)
    net.goto_epoch_end(epoch)
    with pytest.raises(ChainRevert, match="NotValidator"):
        net.miners[0].incentives.propose_root(epoch, tree.root, tree.total)
    with pytest.raises(ChainRevert, match="TotalExceedsEmission"):
        big.incentives.propose_root(epoch, tree.root, EMISSION + 1)
    big.incentives.propose_root(epoch, tree.root, tree.total)
    with pytest.raises(ChainRevert, match="AlreadyVoted"):
        big.incentives.propose_root(epoch, tree.root, tree.total)
    small.incentives.propose_root(epoch, b"\x01" * 32, tree.total)  # a dissenting root
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.OPEN  # 3 of 6 is no majority
    net.validators[1].incentives.propose_root(epoch, tree.root, tree.total)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.MERKLE_SETTLED
    assert net.suite.incentives.root_support(epoch, tree.root, tree.total) == 5 * ETH
    with pytest.raises(ChainRevert, match="EpochAlreadySettled"):
        net.suite.incentives.settle(epoch)


def test_claims_with_valid_proofs(net: Net, tree: RewardTree) -> None:
    for account in [m.address for m in net.miners] + [net.validators[2].address]:
        amount = tree.amount_of(account)
        net.miners[0].incentives.claim_merkle(tree.epoch, account, amount, tree.proof(account))
        assert net.suite.token_balance(account) == amount
    with pytest.raises(ChainRevert, match="AlreadyClaimed"):
        miner = net.miners[1].address
        net.miners[1].incentives.claim_merkle(
            tree.epoch, miner, tree.amount_of(miner), tree.proof(miner)
        )


def test_forged_proofs_fail(net: Net, tree: RewardTree) -> None:
    outsider = net.join()
    victim = net.miners[2].address
    honest_proof = tree.proof(victim)
    forgeries = [
        (outsider.address, tree.amount_of(victim), honest_proof),  # someone else's leaf
        (outsider.address, 10 * ETH, [b"\x07" * 32] * len(honest_proof)),  # invented siblings
        (outsider.address, 10 * ETH, []),  # no proof at all
    ]
    for account, amount, proof in forgeries:
        with pytest.raises(ChainRevert) as info:
            outsider.incentives.claim_merkle(tree.epoch, account, amount, proof)
        assert info.value.error_name == "InvalidProof"
    assert net.suite.token_balance(outsider.address) == 0
    unsettled = tree.epoch + 5
    with pytest.raises(ChainRevert, match="NotMerkleSettled"):
        outsider.incentives.claim_merkle(unsettled, victim, 1, honest_proof)


def test_inflated_amount_fails(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    miner = net.miners[0].address
    tree = build_reward_tree(epoch, {miner: 5 * ETH, net.miners[1].address: 6 * ETH})
    net.goto_epoch_end(epoch)
    for v in net.validators[1:]:
        v.incentives.propose_root(epoch, tree.root, tree.total)
    with pytest.raises(ChainRevert, match="InvalidProof"):
        net.miners[0].incentives.claim_merkle(epoch, miner, 50 * ETH, tree.proof(miner))
