"""A miner's bond and the validator stake-majority that slashes it (issue 15), both backends.

A miner registers with a bond (the network's minimum miner stake); the bond stays locked while
it is registered and while it unbonds after leaving; validators holding more than half of the
stake at the accused epoch's end slash it by voting for the same (miner, epoch, evidence hash):
the bond is burned, the miner deregistered and its node key banned, so coming back costs a new
bond under a new key. Stake moved after that epoch can neither pass nor block a slash."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address
from web3 import Web3

from adapters.chain.backends import chain_time, set_time
from adapters.chain.chain_errors import ChainRevert
from adapters.chain.client import ChainClient
from protocol.settlement.params import Role
from protocol.settlement.slashing import evidence_hash
from tests.chain.harness import ETH, Net, make_net, node_key
from tests.chain.test_settlement_attacks import _estimate_in_block_at

pytestmark = pytest.mark.chain

STAKES = (40 * ETH, 35 * ETH, 25 * ETH)
EVIDENCE = evidence_hash(b"the miner's signed contribution, as received")
ZERO = "0x" + "0" * 40


def _net(w3: Web3) -> Net:
    return make_net(w3, miners=3, validator_stakes=STAKES, unbonding_delay=600)


def _ended_epoch(net: Net) -> int:
    """An epoch that has just ended (slash votes name a finished epoch)."""
    epoch = net.suite.registry.current_epoch()
    net.goto_epoch_end(epoch)
    return epoch


def _refusal(info: pytest.ExceptionInfo[ChainRevert]) -> tuple[str, tuple[object, ...]]:
    """The error and its arguments, addresses checksummed (the decoder gives lower case)."""
    args = tuple(to_checksum_address(a) if isinstance(a, str) and a.startswith("0x") else a
                 for a in info.value.error_args)
    return info.value.error_name, args


def _vote(v: ChainClient, miner: ChainClient, epoch: int) -> None:
    v.registry.vote_slash(miner.address, epoch, EVIDENCE)


def test_a_miner_cannot_register_without_its_bond(w3: Web3) -> None:
    net = _net(w3)
    newcomer = net.join()
    with pytest.raises(ChainRevert) as info:
        newcomer.registry.register_miner(node_key(9, 0), 0)
    assert _refusal(info) == ("InsufficientStake", (0, ETH))
    assert net.network.min_miner_stake > 0


def test_a_minority_does_not_slash_and_a_majority_does(w3: Web3) -> None:
    net = _net(w3)
    miner = net.miners[1]
    epoch = _ended_epoch(net)
    registry = net.suite.registry
    _vote(net.validators[0], miner, epoch)  # 40 of 100
    assert registry.slash_support(miner.address, epoch, EVIDENCE) == (40 * ETH, False)
    with pytest.raises(ChainRevert) as twice:
        _vote(net.validators[0], miner, epoch)
    assert _refusal(twice) == ("AlreadyVotedSlash", (miner.address, epoch,
                                                     net.validators[0].address))
    other = evidence_hash(b"another contribution")  # votes for other evidence do not add up
    net.validators[1].registry.vote_slash(miner.address, epoch, other)
    assert miner.registry.role_of() == Role.MINER and registry.total_slashed() == 0
    _vote(net.validators[2], miner, epoch)  # 65 of 100
    assert registry.slash_support(miner.address, epoch, EVIDENCE) == (65 * ETH, True)
    assert miner.registry.role_of() == Role.NONE
    assert registry.miner_slots()[1] == ZERO
    assert registry.total_slashed() == ETH
    assert miner.registry.unbonding_of() == (0, 0)  # burned, not unbonding
    with pytest.raises(ChainRevert, match="NothingToWithdraw"):
        miner.registry.withdraw()
    with pytest.raises(ChainRevert) as again:
        _vote(net.validators[1], miner, epoch)
    assert _refusal(again) == ("AlreadySlashed", (miner.address, epoch, EVIDENCE))
    with pytest.raises(ChainRevert) as gone:
        net.validators[1].registry.vote_slash(miner.address, epoch, other)
    assert _refusal(gone) == ("NotSlashable", (miner.address,))


def test_coming_back_costs_a_new_bond_under_a_new_key(w3: Web3) -> None:
    net = _net(w3)
    miner = net.miners[0]
    epoch = _ended_epoch(net)
    _vote(net.validators[0], miner, epoch)
    _vote(net.validators[1], miner, epoch)
    assert net.suite.registry.is_node_key_banned(node_key(2, 0))
    with pytest.raises(ChainRevert) as banned:
        miner.registry.register_miner(node_key(2, 0), ETH)
    assert _refusal(banned) == ("NodeKeyBanned", (node_key(2, 0),))
    fresh = net.join()  # a new account and a new key: still a new bond
    with pytest.raises(ChainRevert) as free:
        fresh.registry.register_miner(node_key(9, 1), 0)
    assert _refusal(free) == ("InsufficientStake", (0, ETH))
    fresh.registry.register_miner(node_key(9, 1), ETH)
    miner.registry.register_miner(node_key(9, 2), ETH)  # its account too, with a new bond
    assert miner.registry.stake_of() == ETH
    assert net.suite.registry.total_slashed() == ETH


def test_leaving_does_not_escape_the_slash_and_unbonding_is_enforced(w3: Web3) -> None:
    net = _net(w3)
    miner = net.miners[2]
    epoch = _ended_epoch(net)
    miner.registry.deregister()
    amount, release = miner.registry.unbonding_of()
    assert amount == ETH
    with pytest.raises(ChainRevert) as early:
        miner.registry.withdraw()
    assert _refusal(early) == ("StillUnbonding", (release,))
    _vote(net.validators[0], miner, epoch)
    _vote(net.validators[2], miner, epoch)
    assert miner.registry.unbonding_of() == (0, 0)
    assert net.suite.registry.total_slashed() == ETH
    assert net.suite.registry.is_node_key_banned(node_key(2, 2))
    set_time(w3, release + 1)
    with pytest.raises(ChainRevert, match="NothingToWithdraw"):
        miner.registry.withdraw()


def test_an_unslashed_bond_is_withdrawn_after_the_delay(w3: Web3) -> None:
    net = _net(w3)
    miner = net.miners[0]
    miner.registry.deregister()
    _, release = miner.registry.unbonding_of()
    set_time(w3, release)
    balance = w3.eth.get_balance(miner.address)
    miner.registry.withdraw()
    assert w3.eth.get_balance(miner.address) > balance + ETH * 99 // 100
    # Withdrawn: nothing left to slash.
    epoch = net.suite.registry.current_epoch() - 1
    with pytest.raises(ChainRevert) as info:
        _vote(net.validators[0], miner, epoch)
    assert _refusal(info) == ("NotSlashable", (miner.address,))


def test_stake_moved_after_the_epoch_cannot_swing_a_slash(w3: Web3) -> None:
    net = _net(w3)
    miner = net.miners[1]
    epoch = _ended_epoch(net)
    with pytest.raises(ChainRevert) as early:
        _vote(net.validators[0], miner, epoch + 1)
    end = net.suite.registry.epoch_end(epoch + 1)
    assert _refusal(early) == ("EpochNotEnded", (epoch + 1, end))
    _vote(net.validators[2], miner, epoch)  # 25 of 100
    # After the epoch: a newcomer stakes more than everyone together (the total would be 300,
    # so the 60 voting below would be no majority of it), and a voter adds stake.
    newcomer = net.join(300 * ETH)
    newcomer.registry.register_validator(node_key(7, 0), 200 * ETH)
    with pytest.raises(ChainRevert) as late:
        _vote(newcomer, miner, epoch)
    assert _refusal(late) == ("NotValidator", (newcomer.address,))
    net.validators[1].registry.add_stake(5 * ETH)
    _vote(net.validators[1], miner, epoch)  # 25 + 35 (not 40) of 100 at the epoch's end
    assert net.suite.registry.slash_support(miner.address, epoch, EVIDENCE) == (60 * ETH, True)
    assert miner.registry.role_of() == Role.NONE
    # The other way round: the 40% validator leaves after the epoch; its vote still weighs 40.
    target = net.miners[2]
    net.validators[0].registry.deregister()
    _vote(net.validators[0], target, epoch)
    _vote(net.validators[2], target, epoch)
    assert target.registry.role_of() == Role.NONE


def test_a_slash_never_reverts_on_checkpoint_order(w3: Web3) -> None:
    net = _net(w3)
    epoch = _ended_epoch(net)
    set_time(w3, net.suite.registry.epoch_end(epoch) + 30)
    net.miners[0].registry.deregister()
    newcomer = net.join()
    newcomer.registry.register_miner(node_key(9, 3), ETH)  # slot 0's latest checkpoint: now
    older = chain_time(w3) - 1
    assert older >= net.suite.registry.epoch_end(epoch)
    _vote(net.validators[0], newcomer, epoch)
    fn = net.validators[1].registry.contract.functions.voteSlash(
        newcomer.address, epoch, EVIDENCE)
    _estimate_in_block_at(w3, net.validators[1], fn, 0, older)  # completes the slash


def test_a_bond_stays_slashable_for_the_whole_delay_after_the_leaving_epoch(w3: Web3) -> None:
    # Delay 30 s, epochs 60 s: were the delay counted from leaving, a miner that left early in
    # an epoch could withdraw before that epoch ended, when no slash vote can name it yet.
    net = make_net(w3, miners=2, validator_stakes=STAKES, unbonding_delay=30)
    miner = net.miners[0]
    epoch = net.suite.registry.current_epoch()
    miner.registry.deregister()
    _, release = miner.registry.unbonding_of()
    assert release == net.suite.registry.epoch_end(epoch) + 30
    net.goto_epoch_end(epoch)
    with pytest.raises(ChainRevert, match="StillUnbonding"):
        miner.registry.withdraw()
    _vote(net.validators[0], miner, epoch)
    _vote(net.validators[1], miner, epoch)
    assert miner.registry.unbonding_of() == (0, 0)
    assert net.suite.registry.total_slashed() == ETH
