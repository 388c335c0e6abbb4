"""Node identities: Ed25519 keys and their libp2p-compatible peer ids.

A node's identity is one Ed25519 key. Its peer id is computed exactly as libp2p computes it for
Ed25519 keys, so the same key can serve as the libp2p host key and the two ids always agree:

    PublicKey protobuf {Type = Ed25519 (1), Data = 32 raw bytes}    (36 bytes)
    -> identity multihash (code 0x00, length 36)                      (38 bytes)
    -> base58btc text                                                  ("12D3KooW...")

libp2p is deliberately not imported here: the derivation is a consensus-relevant rule and must
not move when a dependency does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from protocol.domain_types import PeerId, PublicKey

PUBLIC_KEY_BYTES = 32
PRIVATE_KEY_BYTES = 32
SIGNATURE_BYTES = 64

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58_ALPHABET)}

# protobuf field 1 (varint) = KeyType.Ed25519, then field 2 (bytes) of length 32
_PROTOBUF_ED25519_PREFIX = bytes([0x08, 0x01, 0x12, PUBLIC_KEY_BYTES])
_IDENTITY_MULTIHASH = 0x00
_PROTOBUF_KEY_BYTES = len(_PROTOBUF_ED25519_PREFIX) + PUBLIC_KEY_BYTES
_MULTIHASH_PREFIX = bytes([_IDENTITY_MULTIHASH, _PROTOBUF_KEY_BYTES])


def base58btc_encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (leading zero bytes become leading '1's)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    """Inverse of `base58btc_encode`; raises ValueError on characters outside the alphabet."""
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + _B58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def peer_id_from_public_bytes(raw: PublicKey) -> PeerId:
    """libp2p peer id of a raw 32-byte Ed25519 public key."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return PeerId(base58btc_encode(_MULTIHASH_PREFIX + _PROTOBUF_ED25519_PREFIX + raw))


def public_bytes_from_peer_id(peer_id: str) -> PublicKey:
    """Raw Ed25519 public key inside a peer id; ValueError if it is not an Ed25519 peer id."""
    decoded = base58btc_decode(peer_id)
    prefix = _MULTIHASH_PREFIX + _PROTOBUF_ED25519_PREFIX
    if len(decoded) != len(prefix) + PUBLIC_KEY_BYTES or not decoded.startswith(prefix):
        raise ValueError("not an identity-multihash Ed25519 peer id")
    return PublicKey(decoded[len(prefix) :])


@dataclass(frozen=True)
class NodePublicKey:
    """An Ed25519 public key: the identity other participants verify signatures against."""

    raw: PublicKey
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes")
        object.__setattr__(self, "raw", PublicKey(bytes(self.raw)))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    @classmethod
    def from_bytes(cls, raw: bytes) -> NodePublicKey:
        """Wrap 32 raw public-key bytes (ValueError if the length is wrong)."""
        return cls(PublicKey(raw))

    @classmethod
    def from_peer_id(cls, peer_id: str) -> NodePublicKey:
        """Recover the key from its peer id (Ed25519 ids embed the key)."""
        return cls(public_bytes_from_peer_id(peer_id))

    @property
    def peer_id(self) -> PeerId:
        return peer_id_from_public_bytes(self.raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if `signature` is this key's valid Ed25519 signature of `data`."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return self.peer_id


class NodeKey:
    """An Ed25519 private key. Its repr never shows secret material."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw_public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._public = NodePublicKey.from_bytes(raw_public)

    @classmethod
    def generate(cls) -> NodeKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> NodeKey:
        """Load a 32-byte Ed25519 private key (the RFC 8032 seed)."""
        if len(raw) != PRIVATE_KEY_BYTES:
            raise ValueError(f"an Ed25519 private key has {PRIVATE_KEY_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(raw)))

    def to_bytes(self) -> bytes:
        """The 32-byte private seed. Secret: store it only encrypted (adapters.storage.keystore)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public(self) -> NodePublicKey:
        return self._public

    @property
    def peer_id(self) -> PeerId:
        return self._public.peer_id

    def sign(self, data: bytes) -> bytes:
        """64-byte Ed25519 signature of `data` (deterministic, RFC 8032)."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"NodeKey(peer_id={self.peer_id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeKey) and other.public == self.public

    def __hash__(self) -> int:
        return hash(self.public.raw)
