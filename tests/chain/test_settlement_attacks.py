"""Attacks on a finished epoch's settlement (issue 15), both backends.

An epoch's outcome is fixed when it ends: voters, their stakes and the quorum come from the
registry's state at the epoch's end, whatever happens to the validator set afterwards. And no
registration, stake change or eviction may revert on the order of the registry's time-keyed
checkpoints, even when a node evaluates it in a block environment older than the latest
checkpoint (what anvil's gas estimate did on a loaded machine in `python -m bench.gas`)."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from adapters.chain.backends import advance_time, chain_time, is_embedded
from adapters.chain.client import ChainClient
from protocol.settlement.median import settle_reference
from protocol.settlement.params import EpochStatus, Role
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import EMISSION, ETH, Net, make_net, node_key

pytestmark = pytest.mark.chain

STAKES = (40 * ETH, 35 * ETH, 25 * ETH)
# The 40% validator inflates miner 0; the other two score miners 1 and 2, as honest ones did.
INFLATE = normalize_weights([1, 0, 0])
HONEST = normalize_weights([0, 1, 1])
ROWS = [INFLATE, HONEST, HONEST]


def _full_net(w3: Web3) -> Net:
    """Three validators staking 40/35/25 in a full set of three; three miners."""
    return make_net(w3, miners=3, validator_stakes=STAKES, max_validators=3)


def _commit_and_reveal(net: Net, epoch: int) -> None:
    net.goto_commit(epoch)
    net.commit(epoch, ROWS, net.validators)
    net.goto_reveal(epoch)
    net.reveal(epoch, ROWS, net.validators)


def _gains(net: Net, before: list[int]) -> list[int]:
    now = [c.incentives.claimable() for c in net.miners + net.validators]
    return [a - b for a, b in zip(now, before, strict=True)]


def _claimables(net: Net) -> list[int]:
    return [c.incentives.claimable() for c in net.miners + net.validators]


def _expected() -> list[int]:
    result = settle_reference(ROWS, list(STAKES), 3, EMISSION)
    return list(result.miner_rewards) + list(result.validator_rewards)


def test_a_late_eviction_cannot_swing_a_finished_epoch(w3: Web3) -> None:
    net = _full_net(w3)
    epoch = net.suite.registry.current_epoch()
    expected = _expected()
    assert expected[0] == 0 and expected[1] > 0  # the 40% validator alone cannot lift miner 0
    before = _claimables(net)
    _commit_and_reveal(net, epoch)
    net.goto_settle(epoch)
    # After the epoch ended, a newcomer out-stakes the smallest validator and evicts it.
    evictor = net.join(100 * ETH)
    evictor.registry.register_validator(node_key(7, 0), 50 * ETH)
    smallest = net.validators[2]
    assert smallest.registry.role_of() == Role.NONE
    net.suite.incentives.settle(epoch)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.SETTLED
    # The evicted validator's vote still counts (and it is paid for it): nothing moved.
    assert _gains(net, before) == expected
    assert evictor.incentives.claimable() == 0


def test_late_deregistrations_cannot_cancel_the_emission(w3: Web3) -> None:
    net = _full_net(w3)
    epoch = net.suite.registry.current_epoch()
    before = _claimables(net)
    _commit_and_reveal(net, epoch)
    net.goto_settle(epoch)
    # The two larger validators leave after revealing: 25 of the 100 ETH staked at the epoch's
    # end would be no quorum, if the set at settlement time decided.
    net.validators[0].registry.deregister()
    net.validators[1].registry.deregister()
    net.suite.incentives.settle(epoch)
    assert net.suite.incentives.epoch_status(epoch) == EpochStatus.SETTLED
    assert _gains(net, before) == _expected()


def test_a_validator_evicted_before_committing_keeps_its_vote(w3: Web3) -> None:
    net = _full_net(w3)
    epoch = net.suite.registry.current_epoch()
    before = _claimables(net)
    net.goto_commit(epoch)
    evictor = net.join(100 * ETH)
    evictor.registry.register_validator(node_key(7, 1), 50 * ETH)  # evicts the 25 ETH one
    assert net.validators[2].registry.role_of() == Role.NONE
    net.commit(epoch, ROWS, net.validators)  # its stake at the epoch's end entitles it
    net.goto_reveal(epoch)
    net.reveal(epoch, ROWS, net.validators)
    net.goto_settle(epoch)
    net.suite.incentives.settle(epoch)
    assert _gains(net, before) == _expected()


# ---------------------------------------------------------------- a minority's votes

HONEST_FOUR = normalize_weights([1, 2, 3, 4, 0])  # slot 4: the attacker's own miner


def _epoch_gains(net: Net, epoch: int, rows: list[tuple[int, ...]]) -> list[int]:
    before = _claimables(net)
    net.goto_commit(epoch)
    net.commit(epoch, rows, net.validators)
    net.goto_reveal(epoch)
    net.reveal(epoch, rows, net.validators)
    net.goto_settle(epoch)
    net.suite.incentives.settle(epoch, 2)  # in chunks: both passes split across calls
    return _gains(net, before)


@pytest.mark.parametrize(
    "attack",
    [
        normalize_weights([0, 0, 0, 0, 1]),  # burn: everything on its own miner, none on others
        normalize_weights([1, 0, 0, 0, 0]),  # lift miner 0 by voting everyone else down
        normalize_weights([0, 0, 1, 1, 0]),  # lift two, starve two
    ],
    ids=["burn", "lift-one", "lift-two"],
)
def test_a_minority_validator_moves_no_miner_up_or_down(w3: Web3, attack: tuple[int, ...]) -> None:
    net = make_net(w3, miners=5, validator_stakes=STAKES)  # validator 0 (40%) attacks
    epoch = net.suite.registry.current_epoch()
    fair = _epoch_gains(net, epoch, [HONEST_FOUR] * 3)
    attacked = _epoch_gains(net, epoch + 1, [attack, HONEST_FOUR, HONEST_FOUR])
    miners = len(net.miners)
    assert sum(fair[:miners]) > EMISSION // 2 - miners  # the whole miner pool is paid
    assert attacked[:miners] == fair[:miners]
    assert attacked[miners] < fair[miners]  # the attacker's own validator reward falls
    expected = settle_reference([attack, HONEST_FOUR, HONEST_FOUR], list(STAKES), miners, EMISSION)
    assert attacked == list(expected.miner_rewards) + list(expected.validator_rewards)


# ---------------------------------------------------------------- checkpoint order


def _estimate_in_block_at(w3: Web3, client: ChainClient, fn: Any, value: int, at: int) -> None:
    """Evaluates `fn` sent by `client` with `value` in a block environment timestamped `at`
    (earlier than the latest block), as a node's gas estimate may; raises on a revert."""
    tx = {"from": client.address, "to": fn.address, "data": fn._encode_transaction_data(),
          "value": value}
    if is_embedded(w3):
        # py-evm estimates on the canonical head: the same state, seen with an older timestamp.
        chain = w3.provider.ethereum_tester.backend.chain  # type: ignore[attr-defined]
        older = chain.get_canonical_head().copy(timestamp=at)
        chain.get_canonical_head = lambda: older
        try:
            w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        finally:
            del chain.get_canonical_head
        return
    call = {**tx, "value": hex(value)}
    response = w3.provider.make_request(
        RPCEndpoint("eth_call"), [call, "latest", {}, {"time": hex(at)}]
    )
    assert "error" not in response, response


def test_no_registry_change_reverts_on_checkpoint_order(w3: Web3) -> None:
    net = _full_net(w3)
    start = advance_time(w3, 30)
    # Checkpoints written at or after `start`: the total stake, validator 0's stake, slot 0.
    net.validators[0].registry.add_stake(ETH)
    net.miners[0].registry.deregister()
    assert chain_time(w3) >= start
    older = start - 1
    newcomer = net.join(100 * ETH)
    attempts = [
        (newcomer, newcomer.registry.contract.functions.registerValidator(node_key(7, 2)),
         50 * ETH),  # evicts validator 2: its stake and the total
        (net.validators[0], net.validators[0].registry.contract.functions.addStake(), ETH),
        (net.validators[1], net.validators[1].registry.contract.functions.deregister(), 0),
        (newcomer, newcomer.registry.contract.functions.registerMiner(node_key(7, 3)), ETH),
    ]
    for client, fn, value in attempts:
        _estimate_in_block_at(w3, client, fn, value, older)
