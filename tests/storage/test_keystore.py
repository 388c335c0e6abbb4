"""The encrypted keystore: round trip, wrong password, tampering, malformed files."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from adapters.storage.keystore import (
    KeyBundle,
    ScryptParams,
    decrypt_keystore,
    encrypt_keystore,
    read_keystore_info,
)
from protocol.errors import KeystoreError
from protocol.identity import NodeKey

FAST = ScryptParams(n=2**4, r=8, p=1)  # tests only: the default costs 128 MiB per derivation
BUNDLE = KeyBundle(NodeKey.from_bytes(b"\x05" * 32), b"\x06" * 32)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def keystore_text() -> str:
    return encrypt_keystore(BUNDLE, PASSWORD, scrypt=FAST)


def _edited(text: str, edit: Callable[[dict[str, Any]], None]) -> str:
    document = json.loads(text)
    edit(document)
    return json.dumps(document)


def test_round_trip(keystore_text: str) -> None:
    bundle = decrypt_keystore(keystore_text, PASSWORD)
    assert bundle.node_key == BUNDLE.node_key
    assert bundle.evm_private_key == BUNDLE.evm_private_key
    assert bundle.evm_address == Account.from_key(b"\x06" * 32).address


def test_default_cost_is_strong_and_works() -> None:
    assert (ScryptParams().n, ScryptParams().r, ScryptParams().p) == (2**17, 8, 1)
    text = encrypt_keystore(BUNDLE, PASSWORD)
    assert read_keystore_info(text).scrypt == ScryptParams()
    assert decrypt_keystore(text, PASSWORD).peer_id == BUNDLE.peer_id


def test_fresh_salt_and_nonce_each_time() -> None:
    first, second = (json.loads(encrypt_keystore(BUNDLE, PASSWORD, scrypt=FAST)) for _ in "ab")
    assert first["kdf"]["salt"] != second["kdf"]["salt"]
    assert first["ciphertext"] != second["ciphertext"]


def test_no_secret_in_file(keystore_text: str) -> None:
    assert BUNDLE.node_key.to_bytes().hex() not in keystore_text
    assert BUNDLE.evm_private_key.hex() not in keystore_text


def test_public_info_without_password(keystore_text: str) -> None:
    info = read_keystore_info(keystore_text)
    assert info.peer_id == BUNDLE.peer_id
    assert info.evm_address == BUNDLE.evm_address
    assert info.node_public_key == BUNDLE.node_key.public.raw
    assert info.scrypt == FAST


def test_wrong_password(keystore_text: str) -> None:
    with pytest.raises(KeystoreError, match="wrong password"):
        decrypt_keystore(keystore_text, PASSWORD + "!")


def test_password_unicode_normalization() -> None:
    composed = "caf\u00e9"
    text = encrypt_keystore(BUNDLE, composed, scrypt=FAST)
    assert decrypt_keystore(text, unicodedata.normalize("NFD", composed)).peer_id == BUNDLE.peer_id


def test_empty_password_refused() -> None:
    with pytest.raises(KeystoreError, match="empty"):
        encrypt_keystore(BUNDLE, "", scrypt=FAST)


OTHER = KeyBundle(NodeKey.from_bytes(b"\x07" * 32), b"\x08" * 32)


def _flip_hex(value: str) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[len(raw) // 2] ^= 0x01
    return raw.hex()


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "address": lambda d: d.update(address=OTHER.evm_address),
    "peer_id": lambda d: d.update(peer_id=OTHER.peer_id),
    "node_public_key": lambda d: d.update(node_public_key=OTHER.node_key.public.raw.hex()),
    "kdf_n": lambda d: d["kdf"].update(n=2**5),
    "kdf_salt": lambda d: d["kdf"].update(salt=_flip_hex(d["kdf"]["salt"])),
    "nonce": lambda d: d["cipher"].update(nonce=_flip_hex(d["cipher"]["nonce"])),
    "ciphertext": lambda d: d.update(ciphertext=_flip_hex(d["ciphertext"])),
    "truncated": lambda d: d.update(ciphertext=d["ciphertext"][:-2]),
}


@pytest.mark.parametrize("field", sorted(TAMPERINGS))
def test_tampering_detected(keystore_text: str, field: str) -> None:
    with pytest.raises(KeystoreError, match="wrong password, or the file was modified"):
        decrypt_keystore(_edited(keystore_text, TAMPERINGS[field]), PASSWORD)


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": lambda d: d.update(version=2),
    "format": lambda d: d.update(format="ethereum"),
    "extra field": lambda d: d.update(extra=1),
    "missing field": lambda d: d.pop("address"),
    "kdf name": lambda d: d["kdf"].update(name="pbkdf2"),
    "kdf n not power of two": lambda d: d["kdf"].update(n=1000),
    "kdf huge memory": lambda d: d["kdf"].update(n=2**30),
    "kdf n float": lambda d: d["kdf"].update(n=16.0),
    "cipher": lambda d: d["cipher"].update(name="aes-128-cbc"),
    "nonce not hex": lambda d: d["cipher"].update(nonce="xyz"),
    "salt wrong size": lambda d: d["kdf"].update(salt="00"),
    "kdf not an object": lambda d: d.update(kdf=[]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_give_keystore_error(keystore_text: str, case: str) -> None:
    with pytest.raises(KeystoreError):
        decrypt_keystore(_edited(keystore_text, MALFORMED[case]), PASSWORD)


@pytest.mark.parametrize("text", ["", "not json", "[]", "{}", '{"format": 3}', "\ud800"])
def test_garbage_gives_keystore_error(text: str) -> None:
    with pytest.raises(KeystoreError):
        decrypt_keystore(text, PASSWORD)
    with pytest.raises(KeystoreError):
        read_keystore_info(text)


def test_invalid_evm_key_rejected() -> None:
    with pytest.raises(KeystoreError):
        KeyBundle(BUNDLE.node_key, b"\x00" * 32)


def test_generated_bundles_differ_and_repr_hides_secrets() -> None:
    first, second = KeyBundle.generate(), KeyBundle.generate()
    assert first.peer_id != second.peer_id and first.evm_address != second.evm_address
    assert first.evm_private_key.hex() not in repr(first)
