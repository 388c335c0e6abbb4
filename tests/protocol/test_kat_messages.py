"""Known answers: the canonical encoding of every message type, the signing domain, message
digests and a sealed envelope.

Certificates name contributions by digest and every replica re-encodes what it receives, so a
change to a field's width, order or tag, to the domain string or to the digest's input splits
the network. Computed once and written down; Ed25519 signatures are deterministic, so the
sealed envelopes are fixed too.
"""

from __future__ import annotations

import pytest

from protocol.encoding import decode, encode
from protocol.identity import NodeKey
from protocol.messages import (
    CertEntry,
    CertificateEndorsement,
    Contribution,
    Message,
    RoundCertificate,
    ScoreReceipt,
)
from protocol.signing import (
    ENVELOPE_VERSION,
    PROTOCOL_DOMAIN,
    domain,
    message_digest,
    open_envelope,
    seal,
)

NET = "kat-net"
KEY1 = NodeKey.from_bytes(b"\x01" * 32)
KEY2 = NodeKey.from_bytes(b"\x02" * 32)
PUB1 = bytes.fromhex("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
PUB2 = bytes.fromhex("8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394")

CONTRIBUTION = Contribution(
    network_id=NET, round_index=5, sender=PUB1, sequence=1, base_model_hash=bytes(range(32)),
    codec="fo", direction="lowrank", rank=2, block_counts=(3, 0, 5), scale=0.125,
    codes=bytes([1, 130, 7, 200, 0, 64, 255, 9]), compute_ms=1234,
)
CERTIFICATE = RoundCertificate(
    NET, 9, PUB2, 3, b"\x01" * 32,
    (CertEntry(PUB1, b"\x0a" * 32, 250_000_000), CertEntry(PUB2, b"\x0b" * 32, 10**9)),
    b"\x02" * 32,
)
ENDORSEMENT = CertificateEndorsement(NET, 9, PUB1, 4, b"\xaa" * 32, False, "bad hash é")
RECEIPT = ScoreReceipt(
    NET, 9, PUB2, 2**64 - 1, PUB1, True, None, -0.25, 1.5e-3, -2.0, 25.0, 8.333333333333334,
    123456789, "scored",
)

# (message, canonical encoding, digest = SHA-256(domain | encoding))
VECTORS: list[tuple[Message, str, str]] = [
    (
        CONTRIBUTION,
        "0101076b61742d6e657400000000000000058a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3"
        "748801b40f6f5c0000000000000001000102030405060708090a0b0c0d0e0f101112131415161718191a1b"
        "1c1d1e1f0102000200030003000000053fc00000000000000008018207c80040ff09000004d2",
        "7d0d16d581883d2cbe11b252b568cc8f101a675bc214bd0ddf45f3df11160112",
    ),
    (
        CERTIFICATE,
        "0102076b61742d6e657400000000000000098139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25d"
        "f60f5b8fc9b3940000000000000003010101010101010101010101010101010101010101010101010101"
        "010101010100028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c0a0a0a0a"
        "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0ee6b2808139770ea87d175f56a354"
        "66c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
        "0b0b0b0b0b0b0b0b0b0b3b9aca000202020202020202020202020202020202020202020202020202020202"
        "020202",
        "60ebf4bfdf180070752914325af359a3c7f89d9181f076d91ce5c35ab8411cf0",
    ),
    (
        ENDORSEMENT,
        "0103076b61742d6e657400000000000000098a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3"
        "748801b40f6f5c0000000000000004aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaa00000b626164206861736820c3a9",
        "409dba19b9c23bc73b6efd26ec272559863898292d3fa2c7df4b213b10f025d8",
    ),
    (
        RECEIPT,
        "0104076b61742d6e657400000000000000098139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25d"
        "f60f5b8fc9b394ffffffffffffffff8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801"
        "b40f6f5c0102bfd00000000000003f589374bc6a7efac00000000000000040390000000000004020aaaaaa"
        "aaaaab075bcd15000673636f726564",
        "9db5fd8efc98db906d7829a6ecb6625f4b26c80609df03e7ca78104d357777e1",
    ),
]
IDS = ["contribution", "certificate", "endorsement", "receipt"]


def test_test_keys() -> None:
    # Ed25519 public keys of the seeds 01 * 32 and 02 * 32
    assert (KEY1.public.raw, KEY2.public.raw) == (PUB1, PUB2)


@pytest.mark.parametrize(("msg", "encoding", "digest"), VECTORS, ids=IDS)
def test_encoding(msg: Message, encoding: str, digest: str) -> None:
    # version 1 | type tag | fields, big-endian, in the documented order
    assert encode(msg).hex() == encoding
    assert decode(bytes.fromhex(encoding)) == msg


@pytest.mark.parametrize(("msg", "encoding", "digest"), VECTORS, ids=IDS)
def test_message_digest(msg: Message, encoding: str, digest: str) -> None:
    # what certificates and the replay guard call the message
    assert message_digest(msg).hex() == digest


def test_signing_domain() -> None:
    # text("seedswarm/envelope/1") | text(network) | text(type name), u16 length prefixes
    assert PROTOCOL_DOMAIN == "seedswarm/envelope/1"
    assert domain(NET, "contribution").hex() == (
        "001473656564737761726d2f656e76656c6f70652f3100076b61742d6e6574000c636f6e747269627574"
        "696f6e")
    assert domain(NET, "score-receipt").hex() == (
        "001473656564737761726d2f656e76656c6f70652f3100076b61742d6e6574000d73636f72652d726563"
        "65697074")


SEALED = [
    (
        CONTRIBUTION, KEY1,
        "010101076b61742d6e657400000000000000058a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121b"
        "f3748801b40f6f5c0000000000000001000102030405060708090a0b0c0d0e0f101112131415161718191a"
        "1b1c1d1e1f0102000200030003000000053fc00000000000000008018207c80040ff09000004d23fd50463"
        "0d85c9280aa9acbce93300b91f474fba8c51475db0413735716dca34781075242d9d086e47e2a42d27c7ca"
        "63280f581653f74196579c250fc1bc1c01",
    ),
    (
        ENDORSEMENT, KEY1,
        "010103076b61742d6e657400000000000000098a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121b"
        "f3748801b40f6f5c0000000000000004aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaa00000b626164206861736820c3a94b6540c27c6f56e4acc519d8872440867072eb797c0a6ac1"
        "ed8ec6d4f37c0cde74c9b2f1fbe4553b28601c0ac92e2b2d537932ca71a8ef8e880b861633a0100b",
    ),
]


@pytest.mark.parametrize(("msg", "key", "envelope"), SEALED, ids=["contribution", "endorsement"])
def test_sealed_envelope(msg: Message, key: NodeKey, envelope: str) -> None:
    # version 1 | encoding | Ed25519 signature over domain | encoding
    assert ENVELOPE_VERSION == 1
    assert seal(msg, key).hex() == envelope
    opened = open_envelope(bytes.fromhex(envelope), network_id=NET)
    assert opened.message == msg and opened.signer.raw == key.public.raw
    digest = {m: d for m, _, d in VECTORS}[msg]
    assert opened.digest.hex() == digest
