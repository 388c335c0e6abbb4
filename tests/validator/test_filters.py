import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codecs import Codec
from protocol.errors import RejectReason
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.replay import ReplayGuard
from protocol.signing import seal
from validator.filters import (
    PASS,
    FilterContext,
    FilterCounters,
    FilterReason,
    FilterVerdict,
    RoundWindow,
    check_blocks,
    check_deadline,
    check_format,
    check_replay,
    check_scale_and_codes,
    fail,
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


# -- the vocabulary, the edges, and the checks that do not trust the message's own validation


def test_reason_vocabulary() -> None:
    # the names that appear in metrics (FilterCounters) and score receipts
    assert {r.name: r.value for r in FilterReason} == {
        "PASSED": "passed", "MALFORMED": "malformed", "OVERSIZED": "oversized",
        "UNKNOWN_TYPE": "unknown_type", "UNSUPPORTED_VERSION": "unsupported_version",
        "BAD_SIGNATURE": "bad_signature", "WRONG_NETWORK": "wrong_network",
        "OUT_OF_BOUNDS": "out_of_bounds", "WRONG_ROUND": "wrong_round",
        "TOO_EARLY": "too_early", "LATE": "late", "WRONG_CODEC": "wrong_codec",
        "WRONG_DIRECTION": "wrong_direction", "WRONG_SCALAR_COUNT": "wrong_scalar_count",
        "BAD_BLOCKS": "bad_blocks", "BAD_SCALE": "bad_scale", "BAD_CODE": "bad_code",
        "OUT_OF_SYNC": "out_of_sync", "UNKNOWN_SENDER": "unknown_sender",
        "DUPLICATE": "duplicate", "REPLAYED": "replayed", "STALE_SEQUENCE": "stale_sequence",
    }
    # every protocol rejection a filter can meet has its reason (NOT_FINAL is for rounds)
    assert {r.value for r in RejectReason} - {r.value for r in FilterReason} == {"not_final"}


def test_a_verdict_without_detail_has_an_empty_one() -> None:
    assert FilterVerdict(FilterReason.PASSED, "", None, None, None) == PASS and PASS.passed
    assert fail(FilterReason.LATE) == FilterVerdict(FilterReason.LATE, "")
    assert not fail(FilterReason.LATE).passed


@pytest.mark.parametrize(("at", "grace", "reason"), [
    (100.0, 0.0, FilterReason.PASSED), (130.0, 0.0, FilterReason.PASSED),  # the exact ends
    (math.nextafter(100.0, 0.0), 0.0, FilterReason.TOO_EARLY),
    (math.nextafter(130.0, 200.0), 0.0, FilterReason.LATE),
    (99.0, 1.0, FilterReason.PASSED), (131.0, 1.0, FilterReason.PASSED),  # ends with grace
    (98.5, 1.0, FilterReason.TOO_EARLY), (131.5, 1.0, FilterReason.LATE),
    (math.inf, 1.0, FilterReason.MALFORMED), (-math.inf, 1.0, FilterReason.MALFORMED),
])
def test_deadline_edges(at: float, grace: float, reason: FilterReason) -> None:
    window = RoundWindow(round_index=5, opens_at=100.0, deadline=130.0)
    assert check_deadline(at, window, grace).reason is reason
    if grace == 0.0:
        assert check_deadline(at, window).reason is reason  # no grace unless given


def test_the_context_has_no_grace_unless_given() -> None:
    ctx = FilterContext(network=network(), window=context().window, certified_hash=HASH,
                        registered=frozenset({MINER.public.raw}), num_blocks=3)
    assert ctx.grace_s == 0.0
    assert run(seal(contribution(), MINER), ctx, at=130.0) is FilterReason.PASSED
    assert run(seal(contribution(sequence=2), MINER), ctx, at=130.5) is FilterReason.LATE


def test_details_of_the_fixed_refusals() -> None:
    window = context().window
    assert check_deadline(math.nan, window).detail == "no valid receive time"
    assert check_deadline(99.0, window).detail == "1.000s early"
    assert check_deadline(130.25, window).detail == "0.250s late"
    zo_with_blocks = contribution()
    object.__setattr__(zo_with_blocks, "block_counts", (K,))
    assert check_blocks(zo_with_blocks, 3) == fail(FilterReason.BAD_BLOCKS, "ZO has no blocks")
    zero_scale = contribution(scale=0.0)
    assert check_format(zero_scale, network(), 3) == fail(
        FilterReason.BAD_SCALE, "zero scale with nonzero codes")
    negative_zero_code = contribution(codes=bytes([0x80]) + bytes(K - 1))
    assert check_format(negative_zero_code, network(), 3) == fail(
        FilterReason.BAD_CODE, "code 0x80 (negative zero) is not valid")


def test_one_scalar_and_exactly_k_scalars_pass() -> None:
    for codes in (b"\x7f", bytes([127]) + bytes(K - 1)):
        msg = contribution(codes=codes)
        assert check_format(msg, network(), 3) == PASS
        assert run(seal(msg, MINER)) is FilterReason.PASSED
    fo = contribution(codec="fo", block_counts=(1, 0, 0), codes=b"\x81")
    assert run(seal(fo, MINER), context(Codec.FO)) is FilterReason.PASSED


def test_checks_do_not_rely_on_the_messages_own_validation() -> None:
    # a message object that skipped its constructor's checks is still refused here
    fo = contribution(codec="fo", block_counts=(10, 0, 22))
    object.__setattr__(fo, "block_counts", (10, 0, 21))
    assert check_blocks(fo, 3) == fail(FilterReason.BAD_BLOCKS, "block counts do not sum to K")
    empty = contribution()
    object.__setattr__(empty, "codes", b"")
    assert check_format(empty, network(), 3) == fail(
        FilterReason.WRONG_SCALAR_COUNT, f"0 scalars, network allows 1 to {K}")
    for scale in (math.inf, math.nan, -1.0, -math.inf):
        msg = contribution()
        object.__setattr__(msg, "scale", scale)
        verdict = check_scale_and_codes(msg)
        assert verdict.reason is FilterReason.BAD_SCALE and verdict.detail == f"scale {scale!r}"


def test_the_replay_check_names_a_round_outside_the_guards_window() -> None:
    signed = run_filters(seal(contribution(), MINER), context(), ReplayGuard(), 110.0).signed
    assert signed is not None
    verdict = check_replay(signed, ReplayGuard(), current_round=9)
    assert verdict == fail(FilterReason.WRONG_ROUND, "round 5 outside [8, 10]")
    assert check_replay(signed, ReplayGuard(), current_round=5) == PASS
