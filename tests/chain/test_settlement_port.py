"""The behaviour every settlement port must show: the web3 client over the contracts (eth-tester
in process, and anvil) and the in-memory chain the service tests run on.

Each test takes an epoch of its own on the parametrized implementation (see
settlement_harness) and checks the same values on all of them: the schedule, the miner slots,
once-only submission across restarts, every refusal by the contract's error name and
arguments, and what settlement credits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.chain.backends import connect
from adapters.chain.chain_errors import ChainError, ChainRevert, JournalConflict
from adapters.chain.chain_settlement import ChainSettlement
from adapters.chain.client import ChainClient
from adapters.chain.devnode import AnvilNode
from adapters.chain.settlement_port import SettlementPort
from protocol.settlement.median import settle_reference
from protocol.settlement.params import EpochStatus, EpochWindows
from protocol.settlement.slashing import evidence_hash
from protocol.settlement.weight_vector import commit_digest, normalize_weights
from tests.chain.harness import EMISSION, Net, make_net, node_key
from tests.chain.settlement_harness import (
    MINERS,
    VALIDATOR_STAKES,
    MemoryHarness,
    SettlementHarness,
    Web3Harness,
    memory_network,
)

IMPLEMENTATIONS = [
    pytest.param("memory", id="memory"),
    pytest.param("embedded", id="web3-embedded", marks=pytest.mark.chain),
    pytest.param("anvil", id="web3-anvil", marks=pytest.mark.chain),
]

ROWS = (
    normalize_weights([1, 2, 3, 4]),
    normalize_weights([4, 3, 2, 1]),
    normalize_weights([1, 1, 1, 1]),
)


@pytest.fixture(scope="module")
def embedded_net() -> Net:
    return make_net(connect())


@pytest.fixture(scope="module")
def anvil_net(anvil_binary: Path) -> Iterator[Net]:
    with AnvilNode(anvil_binary) as node:
        yield make_net(connect(node.url))


@pytest.fixture(params=IMPLEMENTATIONS)
def harness(request: pytest.FixtureRequest) -> SettlementHarness:
    if request.param == "memory":
        return MemoryHarness(memory_network())
    return Web3Harness(request.getfixturevalue(f"{request.param}_net"))


def _port(harness: SettlementHarness, index: int, journal: Path) -> SettlementPort:
    """A validator's port; statically and at run time an implementation of the interface."""
    port = harness.validator(index, journal)
    assert isinstance(port, SettlementPort)
    return port


def _revert(info: pytest.ExceptionInfo[ChainRevert]) -> tuple[str, tuple[object, ...]]:
    return info.value.error_name, tuple(info.value.error_args)


def test_windows_follow_the_registry_schedule(harness: SettlementHarness, tmp_path: Path) -> None:
    port = _port(harness, 0, tmp_path / "j0")
    epoch = harness.fresh_epoch()
    end = harness.network.genesis_time + (epoch + 1) * 60  # 6 rounds of 10 s
    assert port.windows(epoch) == EpochWindows(end, end + 20, end + 40)
    assert port.windows(epoch + 3) == EpochWindows(end + 180, end + 200, end + 220)


def test_next_block_time_is_the_chains_time(harness: SettlementHarness, tmp_path: Path) -> None:
    port = _port(harness, 0, tmp_path / "j0")
    at = port.windows(harness.fresh_epoch()).commit_opens
    harness.goto(at)
    assert at <= port.next_block_time() <= at + 1


def test_miner_slots_map_each_registered_key_to_its_slot(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    slots = _port(harness, 2, tmp_path / "j2").miner_slots()
    assert dict(slots) == {node_key(2, i): i for i in range(MINERS)}


def test_a_commitment_is_accepted_only_inside_its_window(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch = harness.fresh_epoch()
    early, late = _port(harness, 0, tmp_path / "j0"), _port(harness, 1, tmp_path / "j1")
    windows = early.windows(epoch)
    harness.goto(windows.commit_opens - 5)
    with pytest.raises(ChainRevert) as before:
        early.commit(epoch, ROWS[0])
    assert _revert(before) == ("CommitWindowNotOpen", (epoch, windows.commit_opens))
    harness.goto(windows.reveal_opens)
    with pytest.raises(ChainRevert) as after:
        late.commit(epoch, ROWS[1])
    assert _revert(after) == ("CommitWindowClosed", (epoch, windows.reveal_opens))


def test_only_a_validator_commits(harness: SettlementHarness, tmp_path: Path) -> None:
    epoch = harness.fresh_epoch()
    port = harness.miner(0, tmp_path / "miner")
    harness.goto(port.windows(epoch).commit_opens)
    with pytest.raises(ChainRevert) as refused:
        port.commit(epoch, ROWS[0])
    name, args = _revert(refused)
    assert name == "NotValidator"
    assert str(args[0]).lower() == harness.miner_address(0).lower()


def test_weights_go_on_chain_once_across_restarts(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch, journal = harness.fresh_epoch(), tmp_path / "journal.json"
    first = _port(harness, 0, journal)
    windows = first.windows(epoch)
    harness.goto(windows.commit_opens)
    assert first.commit(epoch, ROWS[0]) is True
    restarted = _port(harness, 0, journal)  # came back with other scores: they are not sent
    assert restarted.commit(epoch, ROWS[1]) is False
    harness.goto(windows.reveal_opens)
    assert restarted.reveal(epoch) is True
    assert _port(harness, 0, journal).reveal(epoch) is False
    assert harness.revealed(epoch, harness.validator_address(0)) == ROWS[0]


def test_a_reveal_is_accepted_only_inside_its_window(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch = harness.fresh_epoch()
    port = _port(harness, 1, tmp_path / "j1")
    windows = port.windows(epoch)
    harness.goto(windows.commit_opens)
    port.commit(epoch, ROWS[1])
    with pytest.raises(ChainRevert) as before:
        port.reveal(epoch)
    assert _revert(before) == ("RevealWindowNotOpen", (epoch, windows.reveal_opens))
    harness.goto(windows.settle_opens)
    with pytest.raises(ChainRevert) as after:
        port.reveal(epoch)
    assert _revert(after) == ("RevealWindowClosed", (epoch, windows.settle_opens))
    assert harness.revealed(epoch, harness.validator_address(1)) == ()


def test_nothing_committed_means_nothing_to_reveal(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch = harness.fresh_epoch()
    late = _port(harness, 2, tmp_path / "late")
    harness.goto(late.windows(epoch).reveal_opens)
    with pytest.raises(ChainRevert, match="CommitWindowClosed"):
        late.commit(epoch, ROWS[2])  # journaled first, then refused
    with pytest.raises(ChainRevert) as refused:
        late.reveal(epoch)
    name, args = _revert(refused)
    assert name == "NoCommitment"
    assert args[0] == epoch and str(args[1]).lower() == harness.validator_address(2).lower()
    with pytest.raises(JournalConflict, match="nothing journaled"):
        _port(harness, 2, tmp_path / "empty").reveal(epoch)


def test_a_lost_journal_can_neither_commit_again_nor_reveal_other_weights(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch, kept, lost = harness.fresh_epoch(), tmp_path / "kept.json", tmp_path / "lost.json"
    original = _port(harness, 0, kept)
    windows = original.windows(epoch)
    harness.goto(windows.commit_opens)
    original.commit(epoch, ROWS[0])
    stranger = _port(harness, 0, lost)  # the same account, with a fresh journal
    with pytest.raises(JournalConflict, match="not the journal's"):
        stranger.commit(epoch, ROWS[1])
    harness.goto(windows.reveal_opens)
    with pytest.raises(ChainRevert) as refused:
        stranger.reveal(epoch)
    salt = bytes.fromhex(json.loads(kept.read_text())["epochs"][str(epoch)]["salt"])
    committed = commit_digest(epoch, harness.validator_address(0), ROWS[0], salt)
    name, (onchain, offered) = _revert(refused)
    assert name == "RevealMismatch"
    assert onchain == committed and offered != committed
    assert original.reveal(epoch) is True
    assert harness.revealed(epoch, harness.validator_address(0)) == ROWS[0]


def _claimables(harness: SettlementHarness) -> list[int]:
    return ([harness.claimable(harness.miner_address(i)) for i in range(MINERS)]
            + [harness.claimable(harness.validator_address(i))
               for i in range(len(VALIDATOR_STAKES))])


def test_settlement_pays_the_stake_weighted_consensus(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch = harness.fresh_epoch()
    ports = [_port(harness, i, tmp_path / f"j{i}") for i in range(len(VALIDATOR_STAKES))]
    windows = ports[0].windows(epoch)
    harness.goto(windows.commit_opens)
    assert all(p.commit(epoch, row) for p, row in zip(ports, ROWS, strict=True))
    harness.goto(windows.reveal_opens)
    assert all(p.reveal(epoch) for p in ports)
    with pytest.raises(ChainRevert) as early:
        ports[0].settle(epoch)
    assert _revert(early) == ("SettlementNotOpen", (epoch, windows.settle_opens))
    assert ports[0].epoch_status(epoch) is EpochStatus.OPEN

    before = _claimables(harness)
    harness.goto(windows.settle_opens)
    assert ports[1].settle(epoch) is EpochStatus.SETTLED
    assert ports[2].epoch_status(epoch) is EpochStatus.SETTLED
    gained = [after - b for after, b in zip(_claimables(harness), before, strict=True)]
    expected = settle_reference(ROWS, VALIDATOR_STAKES, MINERS, EMISSION)
    assert gained == [*expected.miner_rewards, *expected.validator_rewards]
    # validator 2 holds half the stake and either other one gives at least its weight on
    # every slot, so its row is the consensus; the others' excess was clipped, not minted
    assert expected.consensus == ROWS[2]
    assert sum(expected.miner_rewards) < EMISSION // 2
    assert 0 < sum(gained) <= EMISSION
    with pytest.raises(ChainRevert) as again:
        ports[0].settle(epoch)
    assert _revert(again) == ("EpochAlreadySettled", (epoch, int(EpochStatus.SETTLED)))


def test_half_the_stake_is_no_quorum_and_pays_nothing(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    epoch = harness.fresh_epoch()
    heaviest = _port(harness, 2, tmp_path / "j2")  # 3 of 6: not more than half
    windows = heaviest.windows(epoch)
    harness.goto(windows.commit_opens)
    heaviest.commit(epoch, ROWS[2])
    harness.goto(windows.reveal_opens)
    heaviest.reveal(epoch)
    before = _claimables(harness)
    harness.goto(windows.settle_opens)
    assert heaviest.settle(epoch) is EpochStatus.NO_QUORUM
    assert _claimables(harness) == before
    with pytest.raises(ChainRevert) as again:
        heaviest.settle(epoch)
    assert _revert(again) == ("EpochAlreadySettled", (epoch, int(EpochStatus.NO_QUORUM)))


def test_a_stake_majority_slashes_a_miner_and_a_minority_does_not(
    harness: SettlementHarness, tmp_path: Path
) -> None:
    # Runs last of the harness tests: it deregisters miner 3 from the module's network.
    ports = [_port(harness, i, tmp_path / f"j{i}") for i in range(3)]
    epoch = harness.fresh_epoch()
    accused = node_key(2, MINERS - 1)
    evidence = evidence_hash(b"miner 3's signed contribution")
    with pytest.raises(ChainRevert) as early:
        ports[2].vote_slash(accused, epoch, evidence)
    assert _revert(early) == ("EpochNotEnded", (epoch, ports[2].windows(epoch).commit_opens))
    harness.goto(ports[2].windows(epoch).commit_opens)
    with pytest.raises(ChainRevert) as outsider:
        harness.miner(0, tmp_path / "m0").vote_slash(accused, epoch, evidence)
    assert outsider.value.error_name == "NotValidator"
    assert ports[2].vote_slash(accused, epoch, evidence) is False  # 3 of 6: not a majority
    with pytest.raises(ChainRevert) as twice:
        ports[2].vote_slash(accused, epoch, evidence)
    assert twice.value.error_name == "AlreadyVotedSlash"
    assert accused in ports[0].miner_slots()
    assert ports[0].vote_slash(accused, epoch, evidence) is True  # 4 of 6
    assert accused not in ports[0].miner_slots()
    assert len(ports[0].miner_slots()) == MINERS - 1
    with pytest.raises(ChainRevert) as again:
        ports[1].vote_slash(accused, epoch, evidence)
    assert again.value.error_name == "AlreadySlashed"


@pytest.mark.chain
def test_the_web3_port_needs_a_journal(embedded_net: Net) -> None:
    client = ChainClient.connect(embedded_net.w3, embedded_net.suite.deployment,
                                 embedded_net.validators[0].sender._account)
    with pytest.raises(ChainError, match="without a weight journal"):
        ChainSettlement(client)
