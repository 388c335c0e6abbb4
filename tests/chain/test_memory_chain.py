"""The in-memory chain's own calls, below the settlement port: the refusals a once-only port
never provokes, and the "as of the epoch's end" snapshots. Each case mirrors one the contracts
are held to on a real EVM (test_commit_reveal.py, test_epoch_snapshots.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.chain.chain_errors import ChainError, ChainRevert
from adapters.chain.memory_chain import MemoryChain
from protocol.errors import InvalidWeights
from protocol.settlement.median import settle_reference
from protocol.settlement.params import EpochStatus, Role
from protocol.settlement.weight_vector import commit_digest, normalize_weights
from tests.chain.harness import EMISSION, ETH, SALT, node_key
from tests.chain.settlement_harness import (
    ECONOMICS,
    MINERS,
    VALIDATOR_STAKES,
    MemoryHarness,
    address,
    memory_network,
)

ROW = normalize_weights([1, 2, 3, 4])


@pytest.fixture
def net() -> MemoryHarness:
    return MemoryHarness(memory_network())


def _commit(net: MemoryHarness, index: int, row: tuple[int, ...] = ROW) -> None:
    who = net.validator_address(index)
    net.chain.commit_weights(who, 0, commit_digest(0, who, row, SALT))


def _refusal(info: pytest.ExceptionInfo[ChainRevert]) -> tuple[str, tuple[object, ...]]:
    return info.value.error_name, tuple(info.value.error_args)


def test_a_validator_commits_once(net: MemoryHarness) -> None:
    net.goto(net.chain.windows(0).commit_opens)
    _commit(net, 0)
    with pytest.raises(ChainRevert) as again:
        _commit(net, 0, normalize_weights([1, 1]))
    assert _refusal(again) == ("AlreadyCommitted", (0, net.validator_address(0)))
    assert net.chain.commitment(0, net.validator_address(0)).stake == VALIDATOR_STAKES[0]


def test_a_commitment_carries_the_stake_held_before_the_epochs_end(net: MemoryHarness) -> None:
    chain, who = net.chain, net.validator_address(0)
    chain.add_stake(who, ETH)  # in the registration's second: the later value stands
    net.goto(chain.windows(0).commit_opens)
    chain.add_stake(who, 5 * ETH)  # at the epoch's end: too late for it
    _commit(net, 0)
    assert chain.commitment(0, who).stake == 2 * ETH
    assert chain.total_validator_stake() == sum(VALIDATOR_STAKES) + 6 * ETH
    with pytest.raises(ChainRevert, match="ZeroAmount"):
        chain.add_stake(who, 0)


def test_a_reveal_must_be_normalised_fit_the_slots_and_match(net: MemoryHarness) -> None:
    chain, who = net.chain, net.validator_address(1)
    windows = chain.windows(0)
    net.goto(windows.commit_opens)
    _commit(net, 1)
    net.goto(windows.reveal_opens)
    with pytest.raises(ChainRevert) as unnormalised:
        chain.reveal_weights(who, 0, (1, 2, 3), SALT)
    assert _refusal(unnormalised) == ("WeightsNotNormalized", (6,))
    with pytest.raises(ChainRevert) as too_many:
        chain.reveal_weights(who, 0, normalize_weights([1] * 9), SALT)
    assert _refusal(too_many) == ("TooManyWeights", (9, 8))
    with pytest.raises(ChainRevert) as other_salt:
        chain.reveal_weights(who, 0, ROW, b"\x01" * 32)
    name, (committed, revealed) = _refusal(other_salt)
    assert name == "RevealMismatch"
    assert committed == commit_digest(0, who, ROW, SALT) != revealed
    with pytest.raises(InvalidWeights):
        chain.reveal_weights(who, 0, (70_000,), SALT)
    chain.reveal_weights(who, 0, ROW, SALT)
    assert chain.revealed_weights(0, who) == ROW
    with pytest.raises(ChainRevert) as twice:
        chain.reveal_weights(who, 0, ROW, SALT)
    assert _refusal(twice) == ("AlreadyRevealed", (0, who))


def test_stake_registered_after_the_epoch_ended_has_no_say(net: MemoryHarness) -> None:
    chain = net.chain
    windows = chain.windows(0)
    net.goto(windows.commit_opens)
    early = address("early")
    chain.register_validator(early, node_key(7, 0), 50 * ETH)  # at the epoch's end: too late
    with pytest.raises(ChainRevert) as refused:
        chain.commit_weights(early, 0, b"\x01" * 32)
    assert _refusal(refused) == ("NotValidator", (early,))
    for i in (1, 2):  # 5 of the 6 ETH staked before the epoch's end
        _commit(net, i)
    net.goto(windows.reveal_opens)
    for i in (1, 2):
        chain.reveal_weights(net.validator_address(i), 0, ROW, SALT)
    net.goto(windows.settle_opens)
    chain.register_validator(address("late"), node_key(7, 1), 100 * ETH)
    assert chain.total_validator_stake() == 156 * ETH
    assert chain.settle(0) is EpochStatus.SETTLED
    expected = settle_reference([ROW, ROW], VALIDATOR_STAKES[1:], MINERS, EMISSION)
    assert [chain.claimable(net.miner_address(i)) for i in range(MINERS)] == list(
        expected.miner_rewards)
    assert chain.claimable(address("late")) == 0


def test_a_miners_reward_goes_to_whoever_held_the_slot_at_the_epochs_end(
    net: MemoryHarness,
) -> None:
    chain = net.chain
    windows = chain.windows(0)
    net.goto(windows.commit_opens)
    for i in range(3):
        _commit(net, i)
    earner = net.miner_address(1)
    chain.deregister(earner)  # after the epoch ended, before settlement
    heir = address("heir")
    assert chain.register_miner(heir, node_key(7, 2), ETH) == 1
    assert chain.miner_slots()[1] == heir
    net.goto(windows.reveal_opens)
    for i in range(3):
        chain.reveal_weights(net.validator_address(i), 0, ROW, SALT)
    net.goto(windows.settle_opens)
    chain.settle(0)
    expected = settle_reference([ROW] * 3, VALIDATOR_STAKES, MINERS, EMISSION).miner_rewards[1]
    assert expected > 0
    assert chain.claimable(earner) == expected
    assert chain.claimable(heir) == 0


def test_a_validator_that_left_after_revealing_still_votes(net: MemoryHarness) -> None:
    """Issue 15: the voters are those that revealed, with their stake at the epoch's end; the
    set at settlement time (here without validator 2, half the stake) decides nothing."""
    chain = net.chain
    windows = chain.windows(0)
    net.goto(windows.commit_opens)
    for i in range(3):
        _commit(net, i)
    net.goto(windows.reveal_opens)
    for i in range(3):
        chain.reveal_weights(net.validator_address(i), 0, ROW, SALT)
    chain.deregister(net.validator_address(2))  # 3 of the 6 ETH at the epoch's end
    assert chain.role_of(net.validator_address(2)) is Role.NONE
    net.goto(windows.settle_opens)
    assert chain.settle(0) is EpochStatus.SETTLED
    expected = settle_reference([ROW] * 3, VALIDATOR_STAKES, MINERS, EMISSION)
    assert chain.claimable(net.miner_address(0)) == expected.miner_rewards[0] > 0
    assert chain.claimable(net.validator_address(2)) == expected.validator_rewards[2] > 0


def test_the_registry_refuses_what_the_contract_refuses(net: MemoryHarness) -> None:
    chain, taken = net.chain, node_key(1, 0)
    cases = [
        (lambda: chain.register_validator(net.validator_address(0), node_key(7, 0), ETH),
         ("AlreadyRegistered", (net.validator_address(0),))),
        (lambda: chain.register_miner(address("x"), taken, ETH),
         ("NodeKeyTaken", (taken, net.validator_address(0)))),
        (lambda: chain.register_miner(address("x"), bytes(32), ETH), ("ZeroNodeKey", ())),
        (lambda: chain.register_validator(address("x"), node_key(7, 0), ETH - 1),
         ("InsufficientStake", (ETH - 1, ETH))),
        (lambda: chain.deregister(address("x")), ("NotRegistered", (address("x"),))),
    ]
    for call, refusal in cases:
        with pytest.raises(ChainRevert) as info:
            call()
        assert _refusal(info) == refusal
    for i in range(MINERS, 8):
        chain.register_miner(address(f"filler-{i}"), node_key(8, i), ETH)
    with pytest.raises(ChainError, match="does not evict"):
        chain.register_miner(address("one-too-many"), node_key(8, 99), ETH)


def test_parameters_the_contracts_reject_are_rejected(net: MemoryHarness) -> None:
    with pytest.raises(ChainRevert, match="InvalidNetworkParams"):
        MemoryChain(replace(memory_network(), epoch_length=0), ECONOMICS, net.clock)
    with pytest.raises(ChainRevert, match="InvalidEconomicParams"):
        MemoryChain(memory_network(), replace(ECONOMICS, kappa_bps=10_000), net.clock)


# ---------------------------------------------------------------- bonds and slashing
# Mirrors test_slashing.py (the Registry on both EVMs).

EVIDENCE = bytes.fromhex("ab" * 32)


def test_a_bond_is_required_locked_while_unbonding_and_then_withdrawn(net: MemoryHarness) -> None:
    chain, miner = net.chain, net.miner_address(0)
    with pytest.raises(ChainRevert) as free:
        chain.register_miner(address("newcomer"), node_key(9, 0), 0)
    assert _refusal(free) == ("InsufficientStake", (0, ETH))
    chain.deregister(miner)
    amount, release = chain.unbonding_of(miner)
    # A bond unbonds from the end of the epoch its miner left in (slash votes name an epoch).
    assert (amount, release) == (ETH, chain.epoch_end(0) + net.network.unbonding_delay)
    with pytest.raises(ChainRevert) as early:
        chain.withdraw(miner)
    assert _refusal(early) == ("StillUnbonding", (release,))
    net.goto(release)
    assert chain.withdraw(miner) == ETH
    with pytest.raises(ChainRevert, match="NothingToWithdraw"):
        chain.withdraw(miner)


def test_a_majority_at_the_epochs_end_slashes_whatever_moves_later(net: MemoryHarness) -> None:
    chain = net.chain
    miner, leaver = net.miner_address(1), net.miner_address(2)
    v = [net.validator_address(i) for i in range(3)]
    with pytest.raises(ChainRevert) as early:
        chain.vote_slash(v[2], miner, 0, EVIDENCE)
    assert _refusal(early) == ("EpochNotEnded", (0, chain.epoch_end(0)))
    net.goto(chain.epoch_end(0))
    chain.deregister(leaver)  # leaving does not escape: the bond is still unbonding
    assert chain.vote_slash(v[2], miner, 0, EVIDENCE) is False  # 3 of 6
    # After the epoch: a newcomer out-stakes everyone, and voter 0 adds stake. Neither counts.
    chain.register_validator(address("whale"), node_key(7, 0), 100 * ETH)
    with pytest.raises(ChainRevert) as late:
        chain.vote_slash(address("whale"), miner, 0, EVIDENCE)
    assert _refusal(late) == ("NotValidator", (address("whale"),))
    chain.add_stake(v[0], 10 * ETH)
    assert chain.vote_slash(v[0], miner, 0, EVIDENCE) is True  # 1 + 3 of 6
    assert chain.slash_support(miner, 0, EVIDENCE) == (4 * ETH, True)
    assert chain.role_of(miner) is Role.NONE and chain.miner_slots()[1] is None
    assert chain.unbonding_of(miner) == (0, 0)
    with pytest.raises(ChainRevert) as again:
        chain.vote_slash(v[1], miner, 0, EVIDENCE)
    assert _refusal(again) == ("AlreadySlashed", (miner, 0, EVIDENCE))
    chain.vote_slash(v[1], leaver, 0, EVIDENCE)
    chain.vote_slash(v[2], leaver, 0, EVIDENCE)  # 2 + 3 of 6
    assert chain.unbonding_of(leaver) == (0, 0)
    assert chain.total_slashed == 2 * ETH
    # Coming back: never under the banned key, and never without a new bond.
    with pytest.raises(ChainRevert) as banned:
        chain.register_miner(miner, node_key(2, 1), ETH)
    assert _refusal(banned) == ("NodeKeyBanned", (node_key(2, 1),))
    with pytest.raises(ChainRevert) as unbonded:
        chain.register_miner(miner, node_key(9, 1), 0)
    assert _refusal(unbonded) == ("InsufficientStake", (0, ETH))
    chain.register_miner(miner, node_key(9, 1), ETH)
    with pytest.raises(ChainRevert) as gone:
        chain.vote_slash(v[1], leaver, 0, bytes.fromhex("cd" * 32))
    assert _refusal(gone) == ("NotSlashable", (leaver,))
