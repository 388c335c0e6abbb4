"""Stage 1: the fast filters a contribution must pass before anyone spends compute on it.

Each check is a pure function returning a ``FilterVerdict`` (passed, or the reason it failed);
none raises on bad input, whatever bytes arrive. ``run_filters`` applies them cheapest first:

1. envelope: size, version, decoding, message type, network, signature (``open_envelope``);
2. registered sender (before anything stateful, so strangers cannot fill the replay memory);
3. round: exactly the round being collected;
4. deadline: received between the round's opening and its deadline (plus a clock-skew grace);
5. format: the network's codec, direction family and rank; 1 to K scalars (K, the network's
   ``scalars``, is a maximum: miners of smaller capacity send fewer, and the
   apply rule normalizes by each contribution's own count); FO block counts over the model's
   tensors, ZO none; a finite positive scale, or zero scale with all-zero codes; no 0x80 code;
6. sync: ``base_model_hash`` equal to the certified hash, byte for byte;
7. replay: ``ReplayGuard`` (duplicates, reused or stale sequences). Last, because the guard
   remembers what it accepts and only fully valid messages should consume a sequence number.

``FilterCounters`` tallies verdicts by reason for logs and metrics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from enum import StrEnum

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.quantize import SIGN_BIT
from protocol.replay import ReplayGuard
from protocol.signing import Signed, open_envelope


class FilterReason(StrEnum):
    """Why a contribution was refused by stage 1 (``PASSED`` when it was not)."""

    PASSED = "passed"
    # envelope (the values of protocol.errors.RejectReason)
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_SIGNATURE = "bad_signature"
    WRONG_NETWORK = "wrong_network"
    OUT_OF_BOUNDS = "out_of_bounds"
    # round and time
    WRONG_ROUND = "wrong_round"
    TOO_EARLY = "too_early"
    LATE = "late"
    # format
    WRONG_CODEC = "wrong_codec"
    WRONG_DIRECTION = "wrong_direction"
    WRONG_SCALAR_COUNT = "wrong_scalar_count"
    BAD_BLOCKS = "bad_blocks"
    BAD_SCALE = "bad_scale"
    BAD_CODE = "bad_code"
    # state
    OUT_OF_SYNC = "out_of_sync"
    UNKNOWN_SENDER = "unknown_sender"
    DUPLICATE = "duplicate"
    REPLAYED = "replayed"
    STALE_SEQUENCE = "stale_sequence"


@dataclass(frozen=True)
class FilterVerdict:
    """One check's answer; ``signed`` is set when the whole of ``run_filters`` passed.

    ``sender`` and ``digest`` are set whenever the envelope opened (signature verified), even
    when a later check failed, so callers need not open it a second time.
    """

    reason: FilterReason
    detail: str = ""
    signed: Signed[Contribution] | None = None
    sender: PublicKey | None = None
    digest: Digest | None = None

    @property
    def passed(self) -> bool:
        return self.reason is FilterReason.PASSED


PASS = FilterVerdict(FilterReason.PASSED)


def fail(reason: FilterReason, detail: str = "") -> FilterVerdict:
    return FilterVerdict(reason, detail)


def from_rejection(exc: MessageRejected) -> FilterVerdict:
    """The verdict for a protocol-level rejection (envelope or replay)."""
    return fail(FilterReason(exc.reason.value), exc.detail)


@dataclass(frozen=True)
class RoundWindow:
    """When round ``round_index`` accepts contributions (seconds on the validator's clock)."""

    round_index: int
    opens_at: float
    deadline: float


@dataclass(frozen=True)
class FilterContext:
    """What stage 1 compares a contribution with, for the round being collected.

    ``num_blocks`` is the number of trainable tensors (FO block counts must cover exactly
    them); ``grace_s`` absorbs clock skew at both ends of the window.
    """

    network: NetworkConfig
    window: RoundWindow
    certified_hash: ModelHash
    registered: Collection[PublicKey]
    num_blocks: int
    grace_s: float = 0.0


@dataclass
class FilterCounters:
    """How many contributions each reason accounted for (``passed`` included)."""

    counts: Counter[FilterReason] = field(default_factory=Counter)

    def add(self, verdict: FilterVerdict) -> None:
        self.counts[verdict.reason] += 1

    def as_dict(self) -> dict[str, int]:
        return {reason.value: n for reason, n in sorted(self.counts.items())}


def check_envelope(raw: object, network: NetworkConfig) -> FilterVerdict | Signed[Contribution]:
    """The verified contribution inside ``raw``, or the verdict refusing it."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        return fail(FilterReason.MALFORMED, f"expected bytes, got {type(raw).__name__}")
    try:
        return open_envelope(
            raw, network_id=network.network_id, max_size=network.max_message_bytes,
            expect=Contribution,
        )
    except MessageRejected as exc:
        return from_rejection(exc)


def check_sender(msg: Contribution, registered: Collection[PublicKey]) -> FilterVerdict:
    if msg.sender not in registered:
        return fail(FilterReason.UNKNOWN_SENDER, f"sender {msg.sender.hex()[:16]}")
    return PASS


def check_round(msg: Contribution, window: RoundWindow) -> FilterVerdict:
    if msg.round_index != window.round_index:
        return fail(FilterReason.WRONG_ROUND,
                    f"round {msg.round_index}, collecting {window.round_index}")
    return PASS


def check_deadline(received_at: float, window: RoundWindow, grace_s: float = 0.0) -> FilterVerdict:
    """Received within ``[opens_at - grace, deadline + grace]``."""
    if not math.isfinite(received_at):
        return fail(FilterReason.MALFORMED, "no valid receive time")
    if received_at < window.opens_at - grace_s:
        return fail(FilterReason.TOO_EARLY, f"{window.opens_at - received_at:.3f}s early")
    if received_at > window.deadline + grace_s:
        return fail(FilterReason.LATE, f"{received_at - window.deadline:.3f}s late")
    return PASS


def check_format(msg: Contribution, network: NetworkConfig, num_blocks: int) -> FilterVerdict:
    """Codec, direction, rank, at most K scalars, block counts, scale and codes as required."""
    if msg.codec != network.codec.value:
        return fail(FilterReason.WRONG_CODEC, f"{msg.codec}, network uses {network.codec.value}")
    spec = network.direction
    if msg.direction != spec.kind.value or msg.rank != spec.rank:
        return fail(FilterReason.WRONG_DIRECTION,
                    f"{msg.direction}/{msg.rank}, network uses {spec.kind.value}/{spec.rank}")
    if not 1 <= msg.scalars <= network.scalars:
        return fail(FilterReason.WRONG_SCALAR_COUNT,
                    f"{msg.scalars} scalars, network allows 1 to "
                    f"{network.scalars}")
    blocks = check_blocks(msg, num_blocks)
    if not blocks.passed:
        return blocks
    return check_scale_and_codes(msg)


def check_blocks(msg: Contribution, num_blocks: int) -> FilterVerdict:
    """ZO: none. FO: one count per trainable tensor, summing to K (the message checks the sum)."""
    if msg.codec == "zo":
        return PASS if not msg.block_counts else fail(FilterReason.BAD_BLOCKS, "ZO has no blocks")
    if len(msg.block_counts) != num_blocks:
        return fail(FilterReason.BAD_BLOCKS,
                    f"{len(msg.block_counts)} block counts for {num_blocks} tensors")
    if sum(msg.block_counts) != msg.scalars:
        return fail(FilterReason.BAD_BLOCKS, "block counts do not sum to K")
    return PASS


def check_scale_and_codes(msg: Contribution) -> FilterVerdict:
    if not math.isfinite(msg.scale) or msg.scale < 0.0:
        return fail(FilterReason.BAD_SCALE, f"scale {msg.scale!r}")
    if msg.scale == 0.0 and any(msg.codes):
        return fail(FilterReason.BAD_SCALE, "zero scale with nonzero codes")
    if SIGN_BIT in msg.codes:
        return fail(FilterReason.BAD_CODE, "code 0x80 (negative zero) is not valid")
    return PASS


def check_sync(msg: Contribution, certified_hash: ModelHash) -> FilterVerdict:
    if msg.base_model_hash != certified_hash:
        return fail(FilterReason.OUT_OF_SYNC,
                    f"base {msg.base_model_hash.hex()[:16]}, certified {certified_hash.hex()[:16]}")
    return PASS


def check_replay(
    signed: Signed[Contribution], guard: ReplayGuard, current_round: int
) -> FilterVerdict:
    """Ask the guard; it remembers the message when it accepts it."""
    try:
        guard.check(signed, current_round=current_round)  # type: ignore[arg-type]
    except MessageRejected as exc:
        if exc.reason is RejectReason.WRONG_ROUND:
            return fail(FilterReason.WRONG_ROUND, exc.detail)
        return from_rejection(exc)
    return PASS


def run_filters(
    raw: object,
    ctx: FilterContext,
    guard: ReplayGuard,
    received_at: float,
    counters: FilterCounters | None = None,
) -> FilterVerdict:
    """All stage-1 checks in order; the first failure is the verdict. Never raises."""
    verdict = _run(raw, ctx, guard, received_at)
    if counters is not None:
        counters.add(verdict)
    return verdict


def _run(raw: object, ctx: FilterContext, guard: ReplayGuard, received_at: float) -> FilterVerdict:
    opened = check_envelope(raw, ctx.network)
    if isinstance(opened, FilterVerdict):
        return opened
    msg = opened.message
    for verdict in (
        check_sender(msg, ctx.registered),
        check_round(msg, ctx.window),
        check_deadline(received_at, ctx.window, ctx.grace_s),
        check_format(msg, ctx.network, ctx.num_blocks),
        check_sync(msg, ctx.certified_hash),
    ):
        if not verdict.passed:
            return replace(verdict, sender=msg.sender, digest=opened.digest)
    # Only now: the guard remembers every message it accepts.
    replay = check_replay(opened, guard, ctx.window.round_index)
    if not replay.passed:
        return replace(replay, sender=msg.sender, digest=opened.digest)
    return FilterVerdict(FilterReason.PASSED, signed=opened, sender=msg.sender,
                         digest=opened.digest)
