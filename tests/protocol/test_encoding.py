"""Canonical encoding: round trips, exact layout, strict decoding, field invariants."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings

from protocol.encoding import MAX_MESSAGE_BYTES, decode, encode
from protocol.errors import MessageRejected, RejectReason
from protocol.messages import (
    MAX_BLOCKS,
    MAX_CERT_ENTRIES,
    MAX_REASON_CHARS,
    MAX_SCALARS,
    WEIGHT_ONE_PPB,
    CertEntry,
    Contribution,
    Message,
    RoundCertificate,
    ScoreReceipt,
)
from protocol.signing import seal
from tests.protocol.message_strategies import (
    KEYS,
    NETWORK,
    messages,
    sample_contribution,
    sample_endorsement,
)


def _reason(raw: bytes) -> RejectReason:
    with pytest.raises(MessageRejected) as info:
        decode(raw)
    return info.value.reason


@settings(max_examples=300, deadline=None)
@given(messages())
def test_round_trip_and_canonical(msg: Message) -> None:
    raw = encode(msg)
    decoded = decode(raw)
    assert decoded == msg
    assert type(decoded) is type(msg)
    assert encode(decoded) == raw


def test_exact_layout_of_an_endorsement() -> None:
    msg = dataclasses.replace(sample_endorsement(), reason="ok \u00e9")
    expected = (
        bytes([1, 3])  # version, type tag
        + bytes([len(NETWORK)]) + NETWORK.encode()
        + (5).to_bytes(8, "big")  # round
        + KEYS[1].public.raw
        + (1).to_bytes(8, "big")  # sequence
        + b"\xaa" * 32
        + b"\x01"  # approve
        + (5).to_bytes(2, "big") + "ok \u00e9".encode()
    )  # fmt: skip
    assert encode(msg) == expected


def test_exact_layout_of_a_contribution() -> None:
    msg = sample_contribution()
    expected = (
        bytes([1, 1, len(NETWORK)]) + NETWORK.encode()
        + (5).to_bytes(8, "big") + KEYS[0].public.raw + (1).to_bytes(8, "big")
        + bytes(range(32))
        + bytes([1, 2])  # codec "fo", direction "lowrank"
        + (2).to_bytes(2, "big")  # rank
        + (3).to_bytes(2, "big") + b"\x00\x03\x00\x00\x00\x05"  # block counts
        + struct.pack(">d", 0.125)
        + (8).to_bytes(2, "big") + msg.codes
        + (1234).to_bytes(4, "big")
    )  # fmt: skip
    assert encode(msg) == expected


def test_encoding_is_identical_in_another_process() -> None:
    script = (
        "from tests.protocol.message_strategies import sample_contribution, KEYS;"
        "from protocol.signing import seal;"
        "print(seal(sample_contribution(), KEYS[0]).hex())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == seal(sample_contribution(), KEYS[0]).hex()


def _largest_messages() -> list[Message]:
    key = KEYS[0].public.raw
    contribution = Contribution(
        network_id="n" * 64, round_index=2**64 - 1, sender=key, sequence=2**64 - 1,
        base_model_hash=bytes(32), codec="fo", direction="gaussian", rank=1024,
        block_counts=(4,) * MAX_BLOCKS, scale=1.0, codes=b"\x01" * MAX_SCALARS,
        compute_ms=2**32 - 1,
    )  # fmt: skip
    entries = tuple(
        CertEntry(key, i.to_bytes(32, "big"), WEIGHT_ONE_PPB) for i in range(MAX_CERT_ENTRIES)
    )
    certificate = RoundCertificate("n" * 64, 0, key, 0, bytes(32), entries, bytes(32))
    receipt = ScoreReceipt(
        "n" * 64, 0, key, 0, key, True, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0, "\U0001f600" * 256
    )
    return [contribution, certificate, receipt]


def test_largest_valid_messages_fit_the_wire_limit() -> None:
    for msg in _largest_messages():
        assert decode(encode(msg)) == msg
        assert len(seal(msg, KEYS[0])) <= MAX_MESSAGE_BYTES


def test_trailing_and_truncated_bytes() -> None:
    raw = encode(sample_contribution())
    assert _reason(raw + b"\x00") is RejectReason.MALFORMED
    for end in range(len(raw)):
        assert _reason(raw[:end]) is RejectReason.MALFORMED


def test_unknown_version_and_type() -> None:
    raw = encode(sample_contribution())
    assert _reason(b"\x02" + raw[1:]) is RejectReason.UNSUPPORTED_VERSION
    assert _reason(b"\x00" + raw[1:]) is RejectReason.UNSUPPORTED_VERSION
    for tag in (0, 5, 255):
        assert _reason(raw[:1] + bytes([tag]) + raw[2:]) is RejectReason.UNKNOWN_TYPE


def test_oversized_before_parsing() -> None:
    assert _reason(b"\xff" * (MAX_MESSAGE_BYTES + 1)) is RejectReason.OVERSIZED


def _patched(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value) :]


# offsets within sample_contribution()'s encoding (see test_exact_layout_of_a_contribution)
_HEADER = 2 + 1 + len(NETWORK) + 8 + 32 + 8
_CODEC, _DIRECTION, _RANK, _NBLOCKS = _HEADER + 32, _HEADER + 33, _HEADER + 34, _HEADER + 36
_SCALE = _NBLOCKS + 2 + 6
_NCODES = _SCALE + 8


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (_CODEC, b"\x02", RejectReason.MALFORMED),  # unknown codec code
        (_DIRECTION, b"\x09", RejectReason.MALFORMED),
        (_RANK, b"\x00\x00", RejectReason.OUT_OF_BOUNDS),  # rank 0
        (_NBLOCKS, b"\x04\x01", RejectReason.OUT_OF_BOUNDS),  # 1025 blocks
        (_NBLOCKS + 2, b"\x00\x04", RejectReason.MALFORMED),  # counts no longer sum to #codes
        (_SCALE, struct.pack(">d", float("nan")), RejectReason.MALFORMED),
        (_SCALE, struct.pack(">d", float("inf")), RejectReason.MALFORMED),
        (_SCALE, struct.pack(">d", -1.0), RejectReason.OUT_OF_BOUNDS),
        (_SCALE, struct.pack(">d", -0.0), RejectReason.OUT_OF_BOUNDS),  # second 0.0 digest
        (_NCODES, (MAX_SCALARS + 1).to_bytes(2, "big"), RejectReason.OUT_OF_BOUNDS),
        (_NCODES, b"\x00\x00", RejectReason.OUT_OF_BOUNDS),  # no scalars at all
        (2, b"\x00", RejectReason.MALFORMED),  # empty network id
        (3, b"\xff", RejectReason.MALFORMED),  # network id no longer UTF-8
        (3, b" ", RejectReason.MALFORMED),  # network id outside its alphabet
        (2, b"\x41", RejectReason.OUT_OF_BOUNDS),  # network id longer than 64 bytes
    ],
)
def test_non_canonical_contribution_fields(offset: int, value: bytes, reason: RejectReason) -> None:
    raw = encode(sample_contribution())
    assert _reason(_patched(raw, offset, value)) is reason


def test_non_canonical_endorsement_fields() -> None:
    raw = encode(dataclasses.replace(sample_endorsement(), reason="ab"))
    approve = len(raw) - 5
    assert _reason(_patched(raw, approve, b"\x02")) is RejectReason.MALFORMED
    assert _reason(_patched(raw, len(raw) - 2, b"\xc3\x28")) is RejectReason.MALFORMED  # bad UTF-8
    too_long = (4 * MAX_REASON_CHARS + 1).to_bytes(2, "big")
    assert _reason(_patched(raw, len(raw) - 4, too_long)) is RejectReason.OUT_OF_BOUNDS


def test_non_canonical_receipt_fields() -> None:
    key = KEYS[0].public.raw
    msg = ScoreReceipt("net", 0, key, 0, key, True, None, 0.0, 0.0, 0.0, 0.0, 1.0, 7, "")
    raw = encode(msg)
    verified = 2 + 4 + 8 + 32 + 8 + 32 + 1
    assert raw[verified] == 2
    assert decode(_patched(raw, verified, b"\x00")) == dataclasses.replace(msg, verified=False)
    assert _reason(_patched(raw, verified, b"\x03")) is RejectReason.MALFORMED
    sigma = verified + 1 + 4 * 8
    assert _reason(_patched(raw, sigma, struct.pack(">d", -0.5))) is RejectReason.OUT_OF_BOUNDS
    weight = sigma + 8
    too_big = (WEIGHT_ONE_PPB + 1).to_bytes(4, "big")
    assert _reason(_patched(raw, weight, too_big)) is RejectReason.OUT_OF_BOUNDS


def test_certificate_bounds() -> None:
    key = KEYS[0].public.raw
    entry = CertEntry(key, b"\x01" * 32, 5)
    raw = encode(RoundCertificate("net", 0, key, 0, bytes(32), (entry,), bytes(32)))
    count = 2 + 4 + 8 + 32 + 8 + 32
    too_many = (MAX_CERT_ENTRIES + 1).to_bytes(2, "big")
    assert _reason(_patched(raw, count, too_many)) is RejectReason.OUT_OF_BOUNDS
    doubled = raw[:count] + b"\x00\x02" + raw[count + 2 : -32] + raw[count + 2 : -32] + raw[-32:]
    assert _reason(doubled) is RejectReason.MALFORMED  # the same contribution twice


CONTRIBUTION_INVARIANTS = [
    ({"sender": b"\x00" * 31}, RejectReason.MALFORMED),
    ({"base_model_hash": b""}, RejectReason.MALFORMED),
    ({"network_id": "bad id"}, RejectReason.MALFORMED),
    ({"network_id": "x" * 65}, RejectReason.MALFORMED),
    ({"round_index": -1}, RejectReason.OUT_OF_BOUNDS),
    ({"sequence": 2**64}, RejectReason.OUT_OF_BOUNDS),
    ({"codec": "sgd"}, RejectReason.MALFORMED),
    ({"rank": 0}, RejectReason.OUT_OF_BOUNDS),
    ({"scale": float("nan")}, RejectReason.MALFORMED),
    ({"codes": b""}, RejectReason.OUT_OF_BOUNDS),
    ({"codes": b"\x00" * (MAX_SCALARS + 1), "block_counts": (MAX_SCALARS + 1,)},
     RejectReason.OUT_OF_BOUNDS),
    ({"codec": "zo"}, RejectReason.MALFORMED),  # zo with block counts
    ({"block_counts": (1, 2)}, RejectReason.MALFORMED),  # sum != #codes
    ({"block_counts": ()}, RejectReason.OUT_OF_BOUNDS),  # fo without blocks
    ({"compute_ms": 2**32}, RejectReason.OUT_OF_BOUNDS),
    ({"round_index": True}, RejectReason.MALFORMED),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "reason"), CONTRIBUTION_INVARIANTS)
def test_contribution_invariants(changes: dict[str, object], reason: RejectReason) -> None:
    with pytest.raises(MessageRejected) as info:
        dataclasses.replace(sample_contribution(), **changes)  # type: ignore[arg-type]
    assert info.value.reason is reason


def test_other_invariants() -> None:
    key = KEYS[0].public.raw
    with pytest.raises(MessageRejected) as info:
        CertEntry(key, bytes(32), WEIGHT_ONE_PPB + 1)
    assert info.value.reason is RejectReason.OUT_OF_BOUNDS
    with pytest.raises(MessageRejected) as info:
        dataclasses.replace(sample_endorsement(), reason="x" * (MAX_REASON_CHARS + 1))
    assert info.value.reason is RejectReason.OUT_OF_BOUNDS
    with pytest.raises(MessageRejected) as info:
        dataclasses.replace(sample_endorsement(), reason="\ud800")  # lone surrogate
    assert info.value.reason is RejectReason.MALFORMED


def test_ints_are_accepted_as_floats() -> None:
    msg = dataclasses.replace(sample_contribution(), scale=2)
    assert isinstance(msg.scale, float)
    assert decode(encode(msg)) == msg


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(MessageRejected):
        decode("not bytes")  # type: ignore[arg-type]


def test_negative_zero_scale_is_refused_so_a_contribution_has_one_encoding() -> None:
    sample = sample_contribution()
    zero = dataclasses.replace(sample, scale=0.0, codes=bytes(len(sample.codes)))
    with pytest.raises(MessageRejected) as info:
        dataclasses.replace(zero, scale=-0.0)
    assert info.value.reason is RejectReason.OUT_OF_BOUNDS
    assert decode(encode(zero)) == zero
