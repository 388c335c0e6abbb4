"""Encrypted keystore holding a node's two secrets: its Ed25519 node key and its EVM key.

One JSON document (UTF-8), pure functions in and out of text; the CLI does the file I/O:

    {"format": "seedswarm-keystore", "version": 1,
     "peer_id": "12D3KooW...", "address": "0x...", "node_public_key": "<hex>",
     "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<hex 16 bytes>"},
     "cipher": {"name": "aes-256-gcm", "nonce": "<hex 12 bytes>"},
     "ciphertext": "<hex>"}

The key is scrypt(password, salt) with n = 2**17, r = 8, p = 1 by default (128 MiB, OWASP's
recommended minimum); the plaintext is node seed (32 bytes) | EVM key (32 bytes), sealed with
AES-256-GCM. The associated data is every field except the ciphertext, as canonical JSON
(sorted keys, no spaces), so editing any metadata - the address, the peer id or the KDF cost -
makes decryption fail. Errors are KeystoreError with a readable message, never a raw
cryptography exception.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from protocol.domain_types import EvmAddress, PeerId, PublicKey
from protocol.errors import KeystoreError
from protocol.identity import PRIVATE_KEY_BYTES, NodeKey

KEYSTORE_FORMAT = "seedswarm-keystore"
KEYSTORE_VERSION = 1
KEYSTORE_FILENAME = "keystore.json"
CIPHER_NAME = "aes-256-gcm"
SALT_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32
MAX_SCRYPT_MEMORY = 1 << 30  # refuse files that would make us allocate more than 1 GiB

_TOP_LEVEL_KEYS = frozenset(
    {"format", "version", "peer_id", "address", "node_public_key", "kdf", "cipher", "ciphertext"}
)


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: n (CPU/memory, a power of two), r (block size), p (parallelism)."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        valid = (
            all(isinstance(v, int) and not isinstance(v, bool) for v in (self.n, self.r, self.p))
            and self.n >= 2
            and self.n & (self.n - 1) == 0
            and 1 <= self.r <= 64
            and 1 <= self.p <= 16
            and 128 * self.n * self.r <= MAX_SCRYPT_MEMORY
        )
        if not valid:
            raise KeystoreError(f"unsupported scrypt parameters n={self.n} r={self.r} p={self.p}")

    @property
    def memory_bytes(self) -> int:
        return 128 * self.n * self.r


@dataclass(frozen=True)
class KeyBundle:
    """A node's secrets: the Ed25519 node key and the secp256k1 EVM private key."""

    node_key: NodeKey
    evm_private_key: bytes

    def __post_init__(self) -> None:
        try:
            Account.from_key(self.evm_private_key)
        except (ValueError, TypeError):
            raise KeystoreError("invalid EVM private key") from None

    @classmethod
    def generate(cls) -> KeyBundle:
        """Fresh keys from the operating system's CSPRNG."""
        return cls(NodeKey.generate(), bytes(Account.create().key))

    @property
    def evm_account(self) -> LocalAccount:
        account: LocalAccount = Account.from_key(self.evm_private_key)
        return account

    @property
    def peer_id(self) -> PeerId:
        return self.node_key.peer_id

    @property
    def evm_address(self) -> EvmAddress:
        return EvmAddress(str(self.evm_account.address))

    def __repr__(self) -> str:
        return f"KeyBundle(peer_id={self.peer_id}, evm_address={self.evm_address})"


@dataclass(frozen=True)
class KeystoreInfo:
    """The public part of a keystore, readable without the password (not authenticated)."""

    version: int
    peer_id: str
    evm_address: str
    node_public_key: PublicKey
    scrypt: ScryptParams


def _normalize_password(password: str) -> bytes:
    # The same password typed on different systems may arrive in different Unicode forms.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _derive_key(password: str, salt: bytes, params: ScryptParams) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    try:
        return kdf.derive(_normalize_password(password))
    except (ValueError, MemoryError) as exc:
        raise KeystoreError(f"key derivation failed: {exc}") from None


def _associated_data(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encrypt_keystore(
    bundle: KeyBundle, password: str, *, scrypt: ScryptParams | None = None
) -> str:
    """Encrypt both secrets under `password`; returns the keystore JSON text."""
    if not password:
        raise KeystoreError("the password must not be empty")
    params = scrypt or ScryptParams()
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    header: dict[str, Any] = {
        "format": KEYSTORE_FORMAT,
        "version": KEYSTORE_VERSION,
        "peer_id": bundle.peer_id,
        "address": bundle.evm_address,
        "node_public_key": bundle.node_key.public.raw.hex(),
        "kdf": {"name": "scrypt", "n": params.n, "r": params.r, "p": params.p, "salt": salt.hex()},
        "cipher": {"name": CIPHER_NAME, "nonce": nonce.hex()},
    }
    plaintext = bundle.node_key.to_bytes() + bundle.evm_private_key
    key = _derive_key(password, salt, params)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated_data(header))
    return json.dumps({**header, "ciphertext": ciphertext.hex()}, indent=2) + "\n"


def _parse(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
        raise KeystoreError("not a keystore: the file is not valid JSON") from None
    if not isinstance(document, dict) or document.get("format") != KEYSTORE_FORMAT:
        raise KeystoreError("not a seedswarm keystore")
    if document.get("version") != KEYSTORE_VERSION:
        raise KeystoreError(f"unsupported keystore version {document.get('version')!r}")
    if set(document) != _TOP_LEVEL_KEYS:
        raise KeystoreError("malformed keystore: unexpected or missing fields")
    return document


def _hex_field(container: dict[str, Any], name: str, size: int | None = None) -> bytes:
    value = container.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise KeystoreError(f"malformed keystore: bad field {name!r}")
    return raw


def _scrypt_params(kdf: Any) -> ScryptParams:
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise KeystoreError("malformed keystore: only the scrypt KDF is supported")
    return ScryptParams(n=kdf.get("n", 0), r=kdf.get("r", 0), p=kdf.get("p", 0))


def read_keystore_info(text: str) -> KeystoreInfo:
    """The keystore's public metadata, without decrypting (not authenticated: display only)."""
    document = _parse(text)
    return KeystoreInfo(
        version=document["version"],
        peer_id=str(document["peer_id"]),
        evm_address=str(document["address"]),
        node_public_key=PublicKey(_hex_field(document, "node_public_key", 32)),
        scrypt=_scrypt_params(document["kdf"]),
    )


def decrypt_keystore(text: str, password: str) -> KeyBundle:
    """Decrypt a keystore; KeystoreError on a wrong password, tampering or malformed input."""
    document = _parse(text)
    params = _scrypt_params(document["kdf"])
    cipher = document["cipher"]
    if not isinstance(cipher, dict) or cipher.get("name") != CIPHER_NAME:
        raise KeystoreError(f"malformed keystore: only {CIPHER_NAME} is supported")
    salt = _hex_field(document["kdf"], "salt", SALT_BYTES)
    nonce = _hex_field(cipher, "nonce", NONCE_BYTES)
    ciphertext = _hex_field(document, "ciphertext")
    header = {k: v for k, v in document.items() if k != "ciphertext"}
    key = _derive_key(password, salt, params)
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _associated_data(header))
    except InvalidTag:
        raise KeystoreError(
            "cannot decrypt the keystore: wrong password, or the file was modified"
        ) from None
    return _unpack_secrets(plaintext, document)


def _unpack_secrets(plaintext: bytes, document: dict[str, Any]) -> KeyBundle:
    if len(plaintext) != 2 * PRIVATE_KEY_BYTES:
        raise KeystoreError("malformed keystore: unexpected secret length")
    bundle = KeyBundle(
        NodeKey.from_bytes(plaintext[:PRIVATE_KEY_BYTES]), plaintext[PRIVATE_KEY_BYTES:]
    )
    if bundle.peer_id != document["peer_id"] or bundle.evm_address != document["address"]:
        raise KeystoreError("keystore secrets do not match its peer id and address")
    return bundle
