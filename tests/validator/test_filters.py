import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codecs import Codec
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.replay import ReplayGuard
from protocol.signing import seal
from validator.filters import (
    FilterContext,
    FilterCounters,
    FilterReason,
    RoundWindow,
    check_blocks,
    check_deadline,
    check_format,
    run_filters,
)

NET = "filters-test"
K = 32
HASH = bytes(range(32))
MINER = NodeKey.from_bytes(b"\x07" * 32)
STRANGER = NodeKey.from_bytes(b"\x08" * 32)


def network(codec: Codec = Codec.ZO) -> NetworkConfig:
    return NetworkConfig(network_id=NET, base_checkpoint_hash=HASH.hex(), task="synthetic",
                         trainable="lora:4", codec=codec, scalars=K)


def context(codec: Codec = Codec.ZO) -> FilterContext:
    return FilterContext(
        network=network(codec),
        window=RoundWindow(round_index=5, opens_at=100.0, deadline=130.0),
        certified_hash=HASH,
        registered=frozenset({MINER.public.raw}),
        num_blocks=3,
        grace_s=1.0,
    )


def contribution(key: NodeKey = MINER, **changes: Any) -> Contribution:
    base = Contribution(
        network_id=NET, round_index=5, sender=key.public.raw, sequence=1,
        base_model_hash=HASH, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=0.5, codes=bytes([127, 3, 0x85, 0] * (K // 4)), compute_ms=10,
    )
    return dataclasses.replace(base, **changes)


def run(raw: object, ctx: FilterContext | None = None, guard: ReplayGuard | None = None,
        at: float = 110.0) -> FilterReason:
    return run_filters(raw, ctx or context(), guard or ReplayGuard(), at).reason


def test_good_contribution_passes_and_carries_the_signed_message() -> None:
    msg = contribution()
    verdict = run_filters(seal(msg, MINER), context(), ReplayGuard(), 110.0)
    assert verdict.passed and verdict.signed is not None
    assert verdict.signed.message == msg


def test_fo_contribution_with_blocks_over_every_tensor_passes() -> None:
    msg = contribution(codec="fo", block_counts=(10, 0, 22))
    assert run(seal(msg, MINER), context(Codec.FO)) is FilterReason.PASSED


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", FilterReason.MALFORMED),
        (b"\x01" + b"\x00" * 100, FilterReason.UNSUPPORTED_VERSION),  # inner encoding v0
        (b"\x09" + b"\x00" * 100, FilterReason.UNSUPPORTED_VERSION),
        (b"\x01" * (70 * 1024), FilterReason.OVERSIZED),
        ("not bytes", FilterReason.MALFORMED),
        (None, FilterReason.MALFORMED),
    ],
)
def test_garbage_is_refused_with_its_reason(raw: object, reason: FilterReason) -> None:
    assert run(raw) is reason


def test_forged_signature_is_refused() -> None:
    raw = bytearray(seal(contribution(), MINER))
    raw[-1] ^= 1
    assert run(bytes(raw)) is FilterReason.BAD_SIGNATURE


def test_other_network_is_refused() -> None:
    assert run(seal(contribution(network_id="elsewhere"), MINER)) is FilterReason.WRONG_NETWORK


def test_unregistered_sender_is_refused() -> None:
    assert run(seal(contribution(STRANGER), STRANGER)) is FilterReason.UNKNOWN_SENDER


@pytest.mark.parametrize("round_index", [4, 6, 10**9])
def test_other_round_is_refused(round_index: int) -> None:
    assert run(seal(contribution(round_index=round_index), MINER)) is FilterReason.WRONG_ROUND


@pytest.mark.parametrize(
    ("at", "reason"),
    [(98.0, FilterReason.TOO_EARLY), (99.5, FilterReason.PASSED), (130.9, FilterReason.PASSED),
     (131.5, FilterReason.LATE), (float("nan"), FilterReason.MALFORMED)],
)
def test_deadline_with_grace(at: float, reason: FilterReason) -> None:
    assert run(seal(contribution(), MINER), at=at) is reason
    assert check_deadline(at, context().window, 1.0).reason is reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"codec": "fo", "block_counts": (K, 0, 0)}, FilterReason.WRONG_CODEC),
        ({"direction": "rademacher"}, FilterReason.WRONG_DIRECTION),
        ({"direction": "lowrank", "rank": 2}, FilterReason.WRONG_DIRECTION),
        ({"rank": 3}, FilterReason.WRONG_DIRECTION),
        ({"codes": bytes(K + 1)}, FilterReason.WRONG_SCALAR_COUNT),
        ({"codes": bytes(K - 1)}, FilterReason.PASSED),  # K is a maximum
        ({"scale": 0.0}, FilterReason.BAD_SCALE),
        ({"codes": bytes([0x80]) + bytes(K - 1)}, FilterReason.BAD_CODE),
    ],
)
def test_format_violations(changes: dict[str, object], reason: FilterReason) -> None:
    assert run(seal(contribution(MINER, **changes), MINER)) is reason


def test_zero_scale_with_zero_codes_is_well_formed() -> None:
    msg = contribution(scale=0.0, codes=bytes(K))
    assert check_format(msg, network(), 3).passed


@pytest.mark.parametrize("counts", [(K,), (10, 10, 10, 2), (16, 16)])
def test_fo_block_counts_must_cover_every_tensor(counts: tuple[int, ...]) -> None:
    msg = contribution(codec="fo", block_counts=counts)
    assert check_blocks(msg, 3).reason is FilterReason.BAD_BLOCKS
    assert run(seal(msg, MINER), context(Codec.FO)) is FilterReason.BAD_BLOCKS


def test_stale_base_model_is_out_of_sync() -> None:
    msg = contribution(base_model_hash=bytes(32))
    assert run(seal(msg, MINER)) is FilterReason.OUT_OF_SYNC


def test_replays_are_refused_and_counted() -> None:
    ctx, guard, counters = context(), ReplayGuard(), FilterCounters()
    first = seal(contribution(sequence=5), MINER)
    assert run_filters(first, ctx, guard, 110.0, counters).passed
    assert run_filters(first, ctx, guard, 110.0, counters).reason is FilterReason.DUPLICATE
    reused = seal(contribution(sequence=5, compute_ms=11), MINER)
    assert run_filters(reused, ctx, guard, 110.0, counters).reason is FilterReason.REPLAYED
    older = seal(contribution(sequence=4), MINER)
    assert run_filters(older, ctx, guard, 110.0, counters).reason is FilterReason.STALE_SEQUENCE
    run_filters(b"junk", ctx, guard, 110.0, counters)
    assert counters.as_dict() == {"duplicate": 1, "malformed": 1, "passed": 1, "replayed": 1,
                                  "stale_sequence": 1}


def test_refused_messages_do_not_consume_a_sequence() -> None:
    ctx, guard = context(), ReplayGuard()
    late = seal(contribution(sequence=9), MINER)
    assert run(late, ctx, guard, at=200.0) is FilterReason.LATE
    assert run(late, ctx, guard, at=110.0) is FilterReason.PASSED


def test_bit_flips_of_a_valid_envelope_never_raise_nor_pass() -> None:
    raw = seal(contribution(), MINER)
    rng = random.Random(3)
    for _ in range(300):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        if bytes(mutated) == raw:
            continue
        assert run(bytes(mutated)) is not FilterReason.PASSED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert run(raw) is not FilterReason.PASSED
    assert run(b"\x01" + raw) is not FilterReason.PASSED
