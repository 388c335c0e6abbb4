"""Registry: stake, node keys, unbonding, bounded slots with replacement; both backends."""

from __future__ import annotations

import pytest
from web3 import Web3

from adapters.chain.backends import set_time
from adapters.chain.chain_errors import ChainRevert
from protocol.settlement.params import Role
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import ETH, Net, make_net, node_key

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3, miners=3, max_miners=3, validator_stakes=(ETH, 2 * ETH), max_validators=2)


def test_network_parameters_are_readable(net: Net) -> None:
    params = net.suite.registry.network_params()
    assert params == net.network
    assert params.genesis_model_hash == b"\x5e" * 32
    assert net.suite.registry.node_key_of(net.miners[1].address) == node_key(2, 1)
    assert net.suite.registry.account_of_node_key(node_key(2, 1)) == net.miners[1].address


def test_registration_rules(net: Net) -> None:
    newcomer = net.join()
    with pytest.raises(ChainRevert) as low:
        newcomer.registry.register_miner(node_key(9, 0), ETH // 2)
    assert (low.value.error_name, low.value.error_args) == ("InsufficientStake", (ETH // 2, ETH))
    with pytest.raises(ChainRevert, match="NodeKeyTaken"):
        newcomer.registry.register_miner(node_key(2, 0), ETH)
    with pytest.raises(ChainRevert, match="AlreadyRegistered"):
        net.miners[0].registry.register_miner(node_key(9, 1), ETH)
    # Every slot is taken and every occupant is still immune.
    with pytest.raises(ChainRevert, match="NoReplaceableMiner"):
        newcomer.registry.register_miner(node_key(9, 2), ETH)


def test_lowest_performer_is_replaced(net: Net) -> None:
    epoch = net.suite.registry.current_epoch()
    rows = [normalize_weights([5, 1, 4]), normalize_weights([5, 1, 4])]
    net.run_epoch(epoch, rows)
    performance = net.suite.incentives.miner_performances()
    assert performance.index(min(performance)) == 1
    weakest = net.miners[1]
    newcomer = net.join()
    newcomer.registry.register_miner(node_key(9, 3), 2 * ETH)
    assert net.suite.registry.miner_slots()[1] == newcomer.address
    assert newcomer.registry.miner_slot_of() == 1
    assert weakest.registry.role_of() == Role.NONE
    assert weakest.registry.unbonding_of()[0] == ETH
    assert net.suite.registry.account_of_node_key(node_key(2, 1)) == "0x" + "0" * 40


def test_unbonding_is_enforced(net: Net) -> None:
    miner = net.miners[2]
    miner.registry.deregister()
    amount, release = miner.registry.unbonding_of()
    assert amount == ETH and miner.registry.role_of() == Role.NONE
    with pytest.raises(ChainRevert) as info:
        miner.registry.withdraw()
    assert info.value.error_name == "StillUnbonding"
    assert info.value.error_args == (release,)
    # A miner's bond unbonds from the end of the epoch it left in (slash votes name an epoch).
    epoch = net.suite.registry.current_epoch()
    assert release == net.suite.registry.epoch_end(epoch) + net.network.unbonding_delay
    set_time(net.w3, release - 1)
    with pytest.raises(ChainRevert, match="StillUnbonding"):
        miner.registry.withdraw()
    set_time(net.w3, release)
    before = miner.eth_balance()
    result = miner.registry.withdraw()
    assert miner.eth_balance() > before + ETH - result.gas_used * 10**11
    assert miner.registry.unbonding_of()[0] == 0
    with pytest.raises(ChainRevert, match="NothingToWithdraw"):
        miner.registry.withdraw()


def test_validator_set_replaces_the_smallest_stake(net: Net) -> None:
    smallest = net.validators[0]
    newcomer = net.join(10 * ETH)
    with pytest.raises(ChainRevert) as full:
        newcomer.registry.register_validator(node_key(8, 0), ETH)
    assert full.value.error_args == (ETH,)
    newcomer.registry.register_validator(node_key(8, 0), 3 * ETH // 2)
    assert set(net.suite.registry.validators()) == {net.validators[1].address, newcomer.address}
    assert smallest.registry.role_of() == Role.NONE
    assert net.suite.registry.total_validator_stake() == 2 * ETH + 3 * ETH // 2


def test_stake_can_grow(net: Net) -> None:
    v = net.validators[1]
    total = net.suite.registry.total_validator_stake()
    v.registry.add_stake(ETH)
    assert v.registry.stake_of() == 3 * ETH
    assert net.suite.registry.total_validator_stake() == total + ETH
    with pytest.raises(ChainRevert, match="ZeroAmount"):
        v.registry.add_stake(0)
