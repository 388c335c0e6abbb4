"""Node identities: libp2p-compatible peer ids, signatures, base58."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import Ed25519PrivateKey as Libp2pPrivateKey
from libp2p.crypto.ed25519 import Ed25519PublicKey as Libp2pPublicKey
from libp2p.peer.id import ID

from protocol.identity import (
    NodeKey,
    NodePublicKey,
    base58btc_decode,
    base58btc_encode,
    peer_id_from_public_bytes,
    public_bytes_from_peer_id,
)

SEEDS = [bytes([i]) * 32 for i in (0, 1, 7, 255)] + [bytes(range(32))]


@pytest.mark.parametrize("seed", SEEDS)
def test_peer_id_matches_libp2p(seed: bytes) -> None:
    key = NodeKey.from_bytes(seed)
    libp2p_public = Libp2pPublicKey.from_bytes(key.public.raw)
    assert key.peer_id == ID.from_pubkey(libp2p_public).to_base58()
    assert key.peer_id.startswith("12D3KooW")


def test_generated_key_peer_id_matches_libp2p() -> None:
    key = NodeKey.generate()
    assert key.peer_id == ID.from_pubkey(Libp2pPublicKey.from_bytes(key.public.raw)).to_base58()


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_same_seed_is_the_libp2p_host_key(seed: bytes) -> None:
    node_key = NodeKey.from_bytes(seed)
    host_key = Libp2pPrivateKey.from_bytes(node_key.to_bytes())
    assert host_key.get_public_key().to_bytes() == node_key.public.raw
    # a signature made by libp2p's host key verifies under our identity
    assert node_key.public.verify(host_key.sign(b"hello"), b"hello")


def test_private_key_round_trip_and_secret_not_in_repr() -> None:
    key = NodeKey.generate()
    again = NodeKey.from_bytes(key.to_bytes())
    assert again == key and hash(again) == hash(key)
    assert again.public == key.public
    assert key.to_bytes().hex() not in repr(key)
    assert key.peer_id in repr(key)


def test_sign_and_verify() -> None:
    key, other = NodeKey.from_bytes(SEEDS[1]), NodeKey.from_bytes(SEEDS[2])
    signature = key.sign(b"data")
    assert len(signature) == 64
    assert key.public.verify(signature, b"data")
    assert not key.public.verify(signature, b"datA")
    assert not other.public.verify(signature, b"data")
    assert not key.public.verify(signature[:-1], b"data")
    assert not key.public.verify(bytes(64), b"data")


def test_peer_id_back_to_public_key() -> None:
    key = NodeKey.from_bytes(SEEDS[3])
    assert NodePublicKey.from_peer_id(key.peer_id) == key.public
    assert public_bytes_from_peer_id(peer_id_from_public_bytes(key.public.raw)) == key.public.raw


@pytest.mark.parametrize(
    "bad", ["", "0OIl", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "12D3KooW"]
)
def test_invalid_peer_ids_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        NodePublicKey.from_peer_id(bad)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_wrong_key_sizes_rejected(size: int) -> None:
    with pytest.raises(ValueError):
        NodePublicKey.from_bytes(bytes(size))
    with pytest.raises(ValueError):
        NodeKey.from_bytes(bytes(size))


@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert base58btc_decode(base58btc_encode(data)) == data


def test_base58_known_vectors() -> None:
    # Vectors from the base58 draft specification (draft-msporny-base58).
    assert base58btc_encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert base58btc_encode(b"\0\0(\x7f\xb4\xcd") == "11233QC4"
