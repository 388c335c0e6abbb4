"""Changes made after an epoch ended cannot rewrite it: quorum, miner payees, eviction scores and
Merkle votes all use the state at the epoch's end; both backends."""

from __future__ import annotations

import pytest
from web3 import Web3

from adapters.chain.backends import funded_account
from adapters.chain.chain_errors import ChainRevert
from adapters.chain.client import ChainClient
from protocol.settlement.median import settle_reference
from protocol.settlement.merkle import build_reward_tree
from protocol.settlement.params import EpochStatus, Role
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import EMISSION, ETH, Net, make_net, node_key

pytestmark = pytest.mark.chain

ZERO = "0x" + "0" * 40


def _commit_and_reveal(net: Net, epoch: int, rows: list[tuple[int, ...]]) -> None:
    who = net.validators[: len(rows)]
    net.goto_commit(epoch)
    net.commit(epoch, rows, who)
    net.goto_reveal(epoch)
    net.reveal(epoch, rows, who)


def test_late_stake_cannot_cancel_the_quorum(w3: Web3) -> None:
    net = make_net(w3, miners=3)  # validators hold 1, 2, 3 ETH
    epoch = net.suite.registry.current_epoch()
    rows = [normalize_weights([1, 2, 3])] * 2
    net.goto_commit(epoch)
    early = net.join(200 * ETH)  # joins after the epoch ended: no say over it
    early.registry.register_validator(node_key(7, 0), 50 * ETH)
    with pytest.raises(ChainRevert, match="NotValidator"):
        early.incentives.commit(epoch, b"\x01" * 32)
    net.commit(epoch, rows, net.validators[1:])  # 5 of the 6 ETH staked at the epoch's end
    net.goto_reveal(epoch)
    net.reveal(epoch, rows, net.validators[1:])
    net.goto_settle(epoch)
    late = net.join(200 * ETH)
    late.registry.register_validator(node_key(7, 1), 100 * ETH)
    assert net.suite.registry.total_validator_stake() == 156 * ETH
    assert net.suite.registry.total_validator_stake_at(net.suite.registry.epoch_end(epoch)) == (
        6 * ETH
    )
    net.suite.incentives.settle(epoch)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.SETTLED
    assert all(m.incentives.claimable() > 0 for m in net.miners)


def test_miner_reward_goes_to_the_occupant_at_epoch_end(w3: Web3) -> None:
    net = make_net(w3, miners=3, max_miners=3)
    epoch = net.suite.registry.current_epoch()
    rows = [normalize_weights([1, 6, 3])] * 3
    _commit_and_reveal(net, epoch, rows)
    earner = net.miners[1]
    earner.registry.deregister()  # after the epoch ended, before settlement
    thief = net.join()
    thief.registry.register_miner(node_key(7, 2), ETH)
    assert net.suite.registry.miner_slots()[1] == thief.address
    net.goto_settle(epoch)
    net.suite.incentives.settle(epoch)
    expected = settle_reference(rows, net.stakes(), 3, EMISSION).miner_rewards[1]
    assert expected > 0
    assert earner.incentives.claimable() == expected
    assert thief.incentives.claimable() == 0


def test_zero_immunity_is_rejected(w3: Web3) -> None:
    with pytest.raises(ChainRevert, match="ZeroImmunity"):
        make_net(w3, miners=0, validator_stakes=(), immunity_epochs=0)


def test_newcomer_does_not_inherit_the_slot_score(w3: Web3) -> None:
    net = make_net(w3, miners=3, max_miners=3, validator_stakes=(ETH, 2 * ETH))
    epoch = net.suite.registry.current_epoch()
    net.run_epoch(epoch, [normalize_weights([6, 1, 3])] * 2)
    assert net.suite.incentives.miner_performances()[0] > 0
    net.miners[0].registry.deregister()  # the best slot frees up
    heir = net.join()
    heir.registry.register_miner(node_key(7, 3), ETH)
    assert heir.registry.miner_slot_of() == 0
    newcomer = net.join()
    net.goto_epoch_end(net.suite.registry.current_epoch())  # the heir's immunity has run out
    newcomer.registry.register_miner(node_key(7, 4), ETH)
    # The heir was never scored itself, so it counts as 0, below slot 1's measured score.
    assert net.suite.registry.miner_slots()[0] == newcomer.address
    assert heir.registry.role_of() == Role.NONE
    assert net.suite.registry.miner_slots()[1] == net.miners[1].address


def test_merkle_votes_use_epoch_end_stake_and_close(w3: Web3) -> None:
    net = make_net(w3, miners=2)  # validators hold 1, 2, 3 ETH
    epoch = net.suite.registry.current_epoch()
    tree = build_reward_tree(epoch, {m.address: 10 * ETH for m in net.miners})
    net.goto_epoch_end(epoch)
    small, middle, big = net.validators
    big.incentives.propose_root(epoch, tree.root, tree.total)  # 3 of 6: no majority yet
    # The same account cannot vote twice by leaving and coming back...
    big.registry.deregister()
    big.registry.register_validator(node_key(1, 2), 3 * ETH)
    with pytest.raises(ChainRevert, match="AlreadyVoted"):
        big.incentives.propose_root(epoch, tree.root, tree.total)
    # ...nor can stake that arrives after the epoch ended, under any account.
    fresh = ChainClient.connect(w3, net.suite.deployment, funded_account(w3, 200 * ETH))
    fresh.registry.register_validator(node_key(7, 5), 100 * ETH)
    with pytest.raises(ChainRevert, match="NotValidator"):
        fresh.incentives.propose_root(epoch, tree.root, tree.total)
    assert net.suite.incentives.root_support(epoch, tree.root, tree.total) == 3 * ETH
    # The late 100 ETH does not raise the bar either: 4 of the 6 ETH at the epoch's end wins.
    small.incentives.propose_root(epoch, tree.root, tree.total)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.MERKLE_SETTLED
    # Votes close when direct settlement opens.
    later = epoch + 1
    net.goto_settle(later)
    with pytest.raises(ChainRevert) as closed:
        middle.incentives.propose_root(later, tree.root, tree.total)
    assert closed.value.error_name == "RootVotingClosed"
    assert closed.value.error_args == (later, net.suite.incentives.windows(later).settle_opens)
    net.suite.incentives.settle(later)
    assert net.suite.incentives.epoch_status(later) == EpochStatus.NO_QUORUM
