"""Chain-free parts of the client: weights, reference median, Merkle trees, journal, retries,
nonces and revert decoding. Fast; part of the default test run."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.chain.artifacts import all_abis
from adapters.chain.chain_errors import InvalidWeights, JournalConflict, TransientRpcError
from adapters.chain.journal import JournalEntry, SubmissionJournal
from adapters.chain.nonce import NonceManager
from adapters.chain.retry import RetryPolicy, call_with_retries
from adapters.chain.revert import RevertDecoder
from protocol.settlement.median import consensus_weight, settle_reference
from protocol.settlement.merkle import build_reward_tree, process_proof, reward_leaf
from protocol.settlement.params import WEIGHT_SCALE
from protocol.settlement.weight_vector import normalize_weights

ALICE = "0x" + "11" * 20
BOB = "0x" + "22" * 20


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=256).filter(any))
def test_normalized_weights_sum_exactly_and_track_scores(scores: list[float]) -> None:
    weights = normalize_weights(scores)
    assert sum(weights) == WEIGHT_SCALE
    total = sum(scores)
    for w, s in zip(weights, scores, strict=True):
        assert abs(w - s * WEIGHT_SCALE / total) < 1.0 + 1e-6


def test_normalization_rejects_all_zero() -> None:
    with pytest.raises(InvalidWeights):
        normalize_weights([0.0, -1.0])


def test_consensus_is_the_stake_weighted_median() -> None:
    assert consensus_weight([10, 20, 30], [1, 1, 1]) == 20
    assert consensus_weight([10, 20, 30], [1, 1, 5]) == 30
    assert consensus_weight([10, 20, 30], [5, 1, 1]) == 10
    assert consensus_weight([10, 20], [1, 1]) == 10  # exactly half is not a majority


def test_reference_never_pays_more_than_the_emission() -> None:
    rows = [
        normalize_weights([1, 1, 0]),
        normalize_weights([1, 0, 1]),
        normalize_weights([0, 1, 1]),
    ]
    result = settle_reference(rows, [1, 1, 1], 3, 10**21)
    assert sum(result.miner_rewards) <= 10**21 // 2
    assert sum(result.validator_rewards) <= 10**21 // 2
    assert result.consensus == (32_768, 32_767, 32_767)  # medians may sum past the scale


def test_merkle_proofs_lead_to_the_root() -> None:
    rewards = {f"0x{i:040x}": i * 7 for i in range(1, 12)}
    tree = build_reward_tree(3, rewards)
    for account, amount in rewards.items():
        assert process_proof(reward_leaf(3, account, amount), tree.proof(account)) == tree.root
    assert process_proof(reward_leaf(3, ALICE, 5), tree.proof("0x" + "0" * 39 + "1")) != tree.root
    assert tree.total == sum(rewards.values())
    assert build_reward_tree(3, dict(reversed(list(rewards.items())))).root == tree.root


def test_reward_leaf_is_double_hashed_abi_encoding() -> None:
    inner = keccak(encode(["uint256", "address", "uint256"], [4, ALICE, 9]))
    assert reward_leaf(4, ALICE, 9) == keccak(inner)


def test_journal_round_trip_and_scope(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    journal = SubmissionJournal(path, "1:a:b")
    entry = JournalEntry(5, (1, 2, 65_532), b"\x09" * 32)
    journal.put(entry)
    journal.put(entry.with_commit_tx("0x" + "aa" * 32))
    reread = SubmissionJournal(path, "1:a:b").get(5)
    assert reread == entry.with_commit_tx("0x" + "aa" * 32)
    assert journal.get(6) is None
    with pytest.raises(JournalConflict):
        SubmissionJournal(path, "2:a:b").get(5)


def test_retries_transient_errors_only() -> None:
    failures = iter([ConnectionError("reset"), TimeoutError("slow")])
    sleeps: list[float] = []

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    policy = RetryPolicy(attempts=3, initial_delay=0.1)
    assert call_with_retries(flaky, policy, sleep=sleeps.append) == "ok"
    assert sleeps == [0.1, 0.2]

    def broken() -> str:
        raise ConnectionError("down")

    with pytest.raises(TransientRpcError):
        call_with_retries(broken, policy, sleep=sleeps.append)

    def wrong() -> str:
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        call_with_retries(wrong, policy, sleep=sleeps.append)


def test_nonce_manager_hands_out_each_nonce_once() -> None:
    manager = NonceManager(lambda: 7)
    taken: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            with manager.reserve() as nonce, lock:
                taken.append(nonce)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(7, 207))


def test_failed_send_releases_the_nonce() -> None:
    chain_count = [3]
    manager = NonceManager(lambda: chain_count[0])
    with manager.reserve() as nonce:
        assert nonce == 3
    with pytest.raises(RuntimeError), manager.reserve() as nonce:
        assert nonce == 4
        raise RuntimeError("rejected before reaching the node")
    chain_count[0] = 4
    with manager.reserve() as nonce:
        assert nonce == 4


def test_custom_errors_decode_by_name() -> None:
    decoder = RevertDecoder(all_abis())
    selector = keccak(text="RevealMismatch(bytes32,bytes32)")[:4]
    data = selector + encode(["bytes32", "bytes32"], [b"\x01" * 32, b"\x02" * 32])
    revert = decoder.decode(data)
    assert revert.error_name == "RevealMismatch"
    assert revert.error_args == (b"\x01" * 32, b"\x02" * 32)
    assert decoder.decode(b"\xde\xad\xbe\xef").error_name == "UnknownError"
    panic = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    assert (decoder.decode(panic).error_name, decoder.decode(panic).error_args) == (
        "Panic",
        (0x11,),
    )
