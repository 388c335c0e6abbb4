"""A validator's epoch duties (validator.service.epoch_chain) against the in-memory chain:
the schedule, the slot vector its scores become, each step, and the races and membership
changes it has to absorb."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.chain.chain_errors import ChainError, ChainRevert, JournalConflict
from adapters.chain.memory_settlement import MemorySettlement
from protocol.membership import Membership, MembershipTimeline
from protocol.settlement.params import EpochStatus, EpochWindows
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import ETH, node_key
from tests.chain.settlement_harness import MemoryHarness, address, memory_network
from validator.service.epoch_chain import EpochChain, due_step, is_final_failure

WINDOWS = EpochWindows(commit_opens=100, reveal_opens=120, settle_opens=140)
MINER = [node_key(2, i).hex() for i in range(4)]
"""The harness's miners' node keys (hex, as a validator's ledger keys them), slots 0..3."""


def _chain(net: MemoryHarness, index: int, journal: Path,
           timeline: MembershipTimeline | None = None) -> EpochChain:
    return EpochChain.connect(net.validator(index, journal), timeline)


def test_each_step_is_due_once_its_window_opened_plus_the_margin() -> None:
    assert due_step("open", WINDOWS, 100.9, 1.0) is None
    assert due_step("open", WINDOWS, 101.0, 1.0) == "commit"
    assert due_step("committed", WINDOWS, 119.0, 0.0) is None
    assert due_step("committed", WINDOWS, 121.0, 1.0) == "reveal"
    assert due_step("revealed", WINDOWS, 140.5, 0.5) == "settle"
    for finished in ("settled", "skipped", "failed"):
        assert due_step(finished, WINDOWS, 1e9, 0.0) is None


def test_scores_become_the_slot_vector(tmp_path: Path) -> None:
    chain = _chain(MemoryHarness(memory_network()), 0, tmp_path / "j")
    # squared and normalised (validator.weights): 1 and 2 -> 1/5 and 4/5 of 65535
    assert chain.slot_vector({MINER[1]: 1.0, MINER[3]: 2.0}) == (0, 13107, 0, 52428)
    assert chain.slot_vector({MINER[0]: 1.0, "ab" * 32: 5.0}) == (65535, 0, 0, 0)  # unknown: out
    assert chain.slot_vector({"ab" * 32: 5.0}) is None
    assert chain.slot_vector({MINER[0]: 0.0}) is None


def test_commit_reveal_settle_pays_the_scored_miners(tmp_path: Path) -> None:
    net = MemoryHarness(memory_network())
    chains = [_chain(net, i, tmp_path / f"j{i}") for i in range(3)]
    windows = chains[0].windows(0)
    scores = {MINER[0]: 3.0, MINER[2]: 1.0}
    net.goto(windows.commit_opens)
    assert [c.run_step("commit", 0, scores) for c in chains] == ["committed"] * 3
    net.goto(windows.reveal_opens)
    assert [c.run_step("reveal", 0, scores) for c in chains] == ["revealed"] * 3
    row = normalize_weights([9, 0, 1, 0])
    assert net.revealed(0, net.validator_address(1)) == row
    net.goto(windows.settle_opens)
    assert chains[0].run_step("settle", 0, scores) == "settled"
    # the others find it settled already: no error, the same stage
    assert chains[2].run_step("settle", 0, scores) == "settled"
    assert net.chain.epoch_status(0) is EpochStatus.SETTLED
    paid = [net.claimable(net.miner_address(i)) for i in range(4)]
    assert paid[0] > paid[2] > 0 and paid[1] == paid[3] == 0


def test_nothing_earned_skips_the_epoch(tmp_path: Path) -> None:
    net = MemoryHarness(memory_network())
    chain = _chain(net, 0, tmp_path / "j")
    net.goto(chain.windows(0).commit_opens)
    assert chain.run_step("commit", 0, {MINER[0]: 0.0}) == "skipped"
    assert not net.chain.commitment(0, net.validator_address(0)).exists


class _StaleStatus(MemorySettlement):
    """A port whose status read lags by one call: another validator settles in between."""

    stale = True

    def epoch_status(self, epoch: int) -> EpochStatus:
        if self.stale:
            self.stale = False
            return EpochStatus.OPEN
        return super().epoch_status(epoch)


def test_losing_the_settlement_race_is_no_failure(tmp_path: Path) -> None:
    net = MemoryHarness(memory_network())
    winner = _chain(net, 0, tmp_path / "a")
    windows = winner.windows(0)
    net.goto(windows.commit_opens)
    winner.run_step("commit", 0, {MINER[0]: 1.0})
    net.goto(windows.reveal_opens)
    winner.run_step("reveal", 0, {})
    net.goto(windows.settle_opens)
    winner.run_step("settle", 0, {})  # 1 of 6 ETH revealed: no quorum, closed all the same
    assert net.chain.epoch_status(0) is EpochStatus.NO_QUORUM
    loser = EpochChain.connect(_StaleStatus(net.chain, net.validator_address(1), tmp_path / "b"))
    assert loser.run_step("settle", 0, {}) == "settled"


def test_an_epoch_still_settling_is_retried(tmp_path: Path) -> None:
    class Settling(MemorySettlement):
        def epoch_status(self, epoch: int) -> EpochStatus:
            return EpochStatus.SETTLING

    net = MemoryHarness(memory_network())
    chain = EpochChain.connect(Settling(net.chain, net.validator_address(0), tmp_path / "j"))
    with pytest.raises(ChainError, match="still SETTLING"):
        chain.run_step("settle", 0, {})


def test_slots_are_read_again_when_the_membership_changes(tmp_path: Path) -> None:
    net = MemoryHarness(memory_network())
    keys = [node_key(2, i) for i in range(4)]
    timeline = MembershipTimeline.constant(Membership.of(keys, [(node_key(1, 0), 1)]))
    chain = _chain(net, 0, tmp_path / "j", timeline)
    newcomer = node_key(7, 0)
    net.chain.register_miner(address("newcomer"), newcomer, ETH)  # slot 4
    scores = {newcomer.hex(): 1.0}
    assert not chain.refresh_slots()
    assert chain.slot_vector(scores) is None  # not known yet
    timeline.set(6, Membership.of([*keys, newcomer], [(node_key(1, 0), 1)]))
    net.goto(chain.windows(0).commit_opens)
    assert chain.run_step("commit", 0, scores) == "committed"  # re-read before committing
    assert chain.miner_slots[newcomer] == 4
    assert not chain.refresh_slots()


def test_final_failures_are_the_ones_a_retry_cannot_fix() -> None:
    for name in ("CommitWindowClosed", "RevealWindowClosed", "RevealMismatch", "NoCommitment"):
        assert is_final_failure(ChainRevert(name))
    for name in ("CommitWindowNotOpen", "SettlementNotOpen", "EpochAlreadySettled"):
        assert not is_final_failure(ChainRevert(name))
    assert not is_final_failure(JournalConflict("x"))


def test_a_slash_vote_is_cast_once_and_a_majority_slashes(tmp_path: Path) -> None:
    net = MemoryHarness(memory_network())  # validators stake 1, 2, 3
    chains = [_chain(net, i, tmp_path / f"j{i}") for i in range(3)]
    accused, evidence = node_key(2, 1), bytes.fromhex("ee" * 32)
    with pytest.raises(ChainRevert, match="EpochNotEnded"):
        chains[2].vote_slash(accused, 0, evidence)  # a real failure: raised
    net.goto(chains[0].windows(0).commit_opens)
    assert chains[2].vote_slash(accused, 0, evidence) is False  # 3 of 6
    assert chains[2].vote_slash(accused, 0, evidence) is False  # again, after a restart: done
    assert accused in chains[0].miner_slots
    assert chains[0].vote_slash(accused, 0, evidence) is True  # 4 of 6
    assert accused not in chains[0].miner_slots
    assert net.chain.miner_slots()[1] is None and net.chain.total_slashed == ETH
    assert chains[1].vote_slash(accused, 0, evidence) is False  # already slashed: done
