"""Signed envelopes: verification, domain separation, bit flips, size limits."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol.signing as signing
from protocol.encoding import MAX_MESSAGE_BYTES, encode
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodePublicKey
from protocol.messages import (
    CertEntry,
    CertificateEndorsement,
    Contribution,
    Message,
    RoundCertificate,
)
from protocol.signing import ENVELOPE_OVERHEAD, domain, message_digest, open_envelope, seal
from tests.protocol.message_strategies import (
    KEYS,
    NETWORK,
    key_for,
    messages,
    sample_contribution,
    sample_endorsement,
)


def _reason(raw: object, network_id: str = NETWORK, **kwargs: object) -> RejectReason:
    with pytest.raises(MessageRejected) as info:
        open_envelope(raw, network_id=network_id, **kwargs)  # type: ignore[call-overload]
    return info.value.reason


@settings(max_examples=150, deadline=None)
@given(messages(network_id=st.just(NETWORK)))
def test_seal_open_round_trip(msg: Message) -> None:
    key = key_for(msg.author)
    sealed = seal(msg, key)
    opened = open_envelope(sealed, network_id=NETWORK)
    assert opened.message == msg
    assert opened.signer == key.public
    assert opened.digest == message_digest(msg)
    assert opened.envelope == sealed


def test_digest_distinguishes_messages_and_networks() -> None:
    base = sample_contribution()
    digests = {
        message_digest(base),
        message_digest(dataclasses.replace(base, sequence=2)),
        message_digest(dataclasses.replace(base, network_id="other")),
    }
    assert len(digests) == 3 and all(len(d) == 32 for d in digests)


def test_expect_narrows_the_type() -> None:
    sealed = seal(sample_contribution(), KEYS[0])
    opened = open_envelope(sealed, network_id=NETWORK, expect=Contribution)
    assert opened.message.codes == sample_contribution().codes
    assert _reason(sealed, expect=CertificateEndorsement) is RejectReason.UNKNOWN_TYPE


def test_seal_refuses_a_key_that_is_not_the_author() -> None:
    with pytest.raises(ValueError):
        seal(sample_contribution(key=KEYS[0]), KEYS[1])


def _sample_certificate() -> RoundCertificate:
    entries = tuple(
        CertEntry(k.public.raw, bytes([i]) * 32, 250_000_000) for i, k in enumerate(KEYS)
    )
    return RoundCertificate(NETWORK, 9, KEYS[2].public.raw, 3, b"\x01" * 32, entries, b"\x02" * 32)


@pytest.mark.parametrize(
    ("msg", "key"),
    [(sample_contribution(), KEYS[0]), (_sample_certificate(), KEYS[2])],
    ids=["contribution", "certificate"],
)
def test_every_single_bit_flip_is_rejected(msg: Message, key: object) -> None:
    sealed = seal(msg, key)  # type: ignore[arg-type]
    reasons = set()
    for bit in range(8 * len(sealed)):
        mutated = bytearray(sealed)
        mutated[bit // 8] ^= 1 << (bit % 8)
        reasons.add(_reason(bytes(mutated)))
    assert RejectReason.BAD_SIGNATURE in reasons
    assert RejectReason.UNSUPPORTED_VERSION in reasons


def test_wrong_network() -> None:
    sealed = seal(sample_contribution(), KEYS[0])
    assert _reason(sealed, network_id="mainnet") is RejectReason.WRONG_NETWORK


def test_signature_does_not_carry_to_another_network() -> None:
    msg = sample_contribution()
    signature = seal(msg, KEYS[0])[-64:]
    moved = dataclasses.replace(msg, network_id="mainnet")
    forged = b"\x01" + encode(moved) + signature
    assert _reason(forged, network_id="mainnet") is RejectReason.BAD_SIGNATURE


def test_signature_does_not_carry_to_another_message_type() -> None:
    msg = sample_contribution()
    encoded = encode(msg)
    wrong_domain = domain(NETWORK, "round-certificate") + encoded
    forged = b"\x01" + encoded + KEYS[0].sign(wrong_domain)
    assert _reason(forged) is RejectReason.BAD_SIGNATURE
    right = b"\x01" + encoded + KEYS[0].sign(domain(NETWORK, "contribution") + encoded)
    assert open_envelope(right, network_id=NETWORK).message == msg
    assert len({domain(NETWORK, t) for t in ("contribution", "score-receipt")}) == 2


def test_signed_by_someone_other_than_the_author() -> None:
    msg = sample_endorsement(key=KEYS[1])
    encoded = encode(msg)
    forged = b"\x01" + encoded + KEYS[3].sign(domain(NETWORK, msg.TYPE_NAME) + encoded)
    assert _reason(forged) is RejectReason.BAD_SIGNATURE


def test_size_is_checked_before_parsing() -> None:
    huge = b"\x01" * (10 * MAX_MESSAGE_BYTES)  # would otherwise parse as version 1
    assert _reason(huge) is RejectReason.OVERSIZED
    sealed = seal(sample_contribution(), KEYS[0])
    assert _reason(sealed, max_size=len(sealed) - 1) is RejectReason.OVERSIZED
    assert open_envelope(sealed, network_id=NETWORK, max_size=len(sealed)).message


def test_structurally_broken_envelopes() -> None:
    sealed = seal(sample_contribution(), KEYS[0])
    assert _reason(b"") is RejectReason.MALFORMED
    assert _reason(sealed[:65]) is RejectReason.MALFORMED
    assert _reason(b"\x02" + sealed[1:]) is RejectReason.UNSUPPORTED_VERSION
    assert _reason(sealed + b"\x00") in {RejectReason.MALFORMED, RejectReason.BAD_SIGNATURE}
    assert _reason(sealed[:-1]) in {RejectReason.MALFORMED, RejectReason.BAD_SIGNATURE}
    assert open_envelope(bytearray(sealed), network_id=NETWORK).message == sample_contribution()


@pytest.mark.parametrize("value", [None, "text", 42, [1, 2]])
def test_non_bytes_input(value: object) -> None:
    assert _reason(value) is RejectReason.MALFORMED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_message_rejected(raw: bytes) -> None:
    with pytest.raises(MessageRejected):
        open_envelope(raw, network_id=NETWORK)


def _rejection(raw: bytes) -> tuple[RejectReason, str]:
    with pytest.raises(MessageRejected) as info:
        open_envelope(raw, network_id=NETWORK)
    return info.value.reason, info.value.detail


def test_the_shortest_envelopes() -> None:
    # a version byte and a signature (65 bytes) leave nothing to decode
    assert ENVELOPE_OVERHEAD == 65
    for size in (0, 1, 64, 65):
        assert _rejection(b"\x01" * size) == (RejectReason.MALFORMED, "envelope too short")
    reason, detail = _rejection(b"\x01" * 66)  # one byte for the decoder, which refuses it
    assert reason is RejectReason.MALFORMED and detail != "envelope too short"


def test_seal_refuses_an_envelope_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # no valid message comes near 64 KiB today; the check stands for when one does
    msg = sample_contribution()
    size = len(seal(msg, KEYS[0]))
    monkeypatch.setattr(signing, "MAX_MESSAGE_BYTES", size)
    assert len(seal(msg, KEYS[0])) == size  # exactly the limit
    monkeypatch.setattr(signing, "MAX_MESSAGE_BYTES", size - 1)
    with pytest.raises(MessageRejected) as info:
        seal(msg, KEYS[0])
    assert (info.value.reason, info.value.detail) == (RejectReason.OVERSIZED,
                                                      f"envelope of {size} bytes")


def test_a_key_the_library_refuses_is_a_bad_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = seal(sample_contribution(), KEYS[0])

    def refuse(raw: bytes) -> NodePublicKey:
        raise ValueError("not a curve point")

    monkeypatch.setattr(signing.NodePublicKey, "from_bytes", staticmethod(refuse))
    assert _rejection(sealed) == (RejectReason.BAD_SIGNATURE, "invalid public key")
