"""The node-key <-> EVM-account binding."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from protocol.binding import NodeBinding, make_binding, verify_binding
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey

NETWORK = "seedswarm-test"
NODE = NodeKey.from_bytes(b"\x11" * 32)
OTHER_NODE = NodeKey.from_bytes(b"\x22" * 32)
EVM = Account.from_key(b"\x33" * 32)
OTHER_EVM = Account.from_key(b"\x44" * 32)


def _rejected(binding: NodeBinding, network_id: str = NETWORK) -> RejectReason:
    with pytest.raises(MessageRejected) as info:
        verify_binding(binding, network_id=network_id)
    return info.value.reason


def test_valid_binding_verifies() -> None:
    binding = make_binding(NODE, EVM, NETWORK)
    verify_binding(binding, network_id=NETWORK)
    assert binding.evm_address == EVM.address
    assert binding.peer_id == NODE.peer_id


def test_wrong_node_signature() -> None:
    binding = make_binding(NODE, EVM, NETWORK)
    flipped = bytes([binding.node_signature[0] ^ 1]) + binding.node_signature[1:]
    assert _rejected(dataclasses.replace(binding, node_signature=flipped)) is (
        RejectReason.BAD_SIGNATURE
    )


def test_wrong_evm_signature() -> None:
    binding = make_binding(NODE, EVM, NETWORK)
    flipped = binding.evm_signature[:10] + bytes([binding.evm_signature[10] ^ 1])
    flipped += binding.evm_signature[11:]
    assert _rejected(dataclasses.replace(binding, evm_signature=flipped)) is (
        RejectReason.BAD_SIGNATURE
    )
    garbage = dataclasses.replace(binding, evm_signature=b"\xff" * 65)
    assert _rejected(garbage) is RejectReason.BAD_SIGNATURE


def test_halves_cannot_be_mixed() -> None:
    mine, theirs = make_binding(NODE, EVM, NETWORK), make_binding(OTHER_NODE, OTHER_EVM, NETWORK)
    # claim my node key belongs to their account, reusing their account's signature
    stolen = dataclasses.replace(
        mine, evm_address=theirs.evm_address, evm_signature=theirs.evm_signature
    )
    assert _rejected(stolen) is RejectReason.BAD_SIGNATURE
    # claim their node key for my account, reusing my node signature
    hijack = dataclasses.replace(mine, node_public_key=theirs.node_public_key)
    assert _rejected(hijack) is RejectReason.BAD_SIGNATURE


def test_other_network() -> None:
    binding = make_binding(NODE, EVM, NETWORK)
    assert _rejected(binding, "mainnet") is RejectReason.WRONG_NETWORK
    moved = dataclasses.replace(binding, network_id="mainnet")
    assert _rejected(moved, "mainnet") is RejectReason.BAD_SIGNATURE


def test_json_round_trip_and_malformed() -> None:
    binding = make_binding(NODE, EVM, NETWORK)
    assert NodeBinding.from_json(binding.to_json()) == binding
    broken = {**binding.to_json(), "node_signature": "zz"}
    with pytest.raises(MessageRejected) as info:
        NodeBinding.from_json(broken)
    assert info.value.reason is RejectReason.MALFORMED
    with pytest.raises(MessageRejected):
        dataclasses.replace(binding, evm_address=binding.evm_address.lower())
