"""A two-way signed statement that one node key and one EVM account belong together.

Each key signs the other's identity under a domain that names the network, so neither half can
be claimed by someone else or carried to another network:

* the node key (Ed25519) signs  text("seedswarm/binding/1") | text(network_id) | address:20
* the EVM account signs the EIP-191 personal message `evm_message(network_id, node key)`,
  a readable text a wallet can display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_checksum_address
from eth_utils.exceptions import ValidationError

from protocol.encoding import Writer
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, NodeKey, NodePublicKey
from protocol.messages import check_network_id

BINDING_DOMAIN = "seedswarm/binding/1"
EVM_SIGNATURE_BYTES = 65


@dataclass(frozen=True)
class NodeBinding:
    """Proof that `node_public_key` and `evm_address` are controlled by the same operator."""

    network_id: str
    node_public_key: bytes
    evm_address: str  # EIP-55 checksummed
    node_signature: bytes
    evm_signature: bytes

    def __post_init__(self) -> None:
        check_network_id(self.network_id)
        sizes = (
            (self.node_public_key, PUBLIC_KEY_BYTES),
            (self.node_signature, SIGNATURE_BYTES),
            (self.evm_signature, EVM_SIGNATURE_BYTES),
        )
        if any(not isinstance(v, bytes) or len(v) != n for v, n in sizes):
            raise MessageRejected(RejectReason.MALFORMED, "binding field of the wrong size")
        if not isinstance(self.evm_address, str) or not is_checksum_address(self.evm_address):
            raise MessageRejected(RejectReason.MALFORMED, "evm_address must be EIP-55 checksummed")

    @property
    def peer_id(self) -> str:
        return NodePublicKey.from_bytes(self.node_public_key).peer_id

    def to_json(self) -> dict[str, str]:
        """Hex-encoded fields, for configuration files and the CLI."""
        return {
            "network_id": self.network_id,
            "node_public_key": self.node_public_key.hex(),
            "evm_address": self.evm_address,
            "node_signature": self.node_signature.hex(),
            "evm_signature": self.evm_signature.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeBinding:
        """Inverse of `to_json`; MessageRejected(MALFORMED) on missing or non-hex fields."""
        try:
            return cls(
                network_id=str(data["network_id"]),
                node_public_key=bytes.fromhex(data["node_public_key"]),
                evm_address=str(data["evm_address"]),
                node_signature=bytes.fromhex(data["node_signature"]),
                evm_signature=bytes.fromhex(data["evm_signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageRejected(RejectReason.MALFORMED, f"binding: {exc}") from None


def node_statement(network_id: str, evm_address: str) -> bytes:
    """What the node key signs: the domain, the network and the 20 address bytes."""
    w = Writer()
    w.text(BINDING_DOMAIN)
    w.text(network_id)
    w.fixed(bytes.fromhex(evm_address.removeprefix("0x")))
    return w.getvalue()


def evm_message(network_id: str, node_public_key: bytes) -> str:
    """What the EVM account signs (EIP-191 personal message): readable in a wallet."""
    return (
        f"{BINDING_DOMAIN}\n"
        f"network: {network_id}\n"
        f"node key: {node_public_key.hex()}\n"
        f"peer id: {NodePublicKey.from_bytes(node_public_key).peer_id}"
    )


def make_binding(node_key: NodeKey, evm_account: LocalAccount, network_id: str) -> NodeBinding:
    """Sign the binding with both keys."""
    check_network_id(network_id)
    address = str(evm_account.address)
    node_public_key = node_key.public.raw
    signable = encode_defunct(text=evm_message(network_id, node_public_key))
    return NodeBinding(
        network_id=network_id,
        node_public_key=node_public_key,
        evm_address=address,
        node_signature=node_key.sign(node_statement(network_id, address)),
        evm_signature=bytes(evm_account.sign_message(signable).signature),
    )


def verify_binding(binding: NodeBinding, *, network_id: str) -> None:
    """Raise MessageRejected unless both signatures hold for `network_id`.

    WRONG_NETWORK if the binding names another network, BAD_SIGNATURE if either signature fails.
    """
    if binding.network_id != network_id:
        raise MessageRejected(RejectReason.WRONG_NETWORK, f"binding for {binding.network_id!r}")
    node_public = NodePublicKey.from_bytes(binding.node_public_key)
    statement = node_statement(network_id, binding.evm_address)
    if not node_public.verify(binding.node_signature, statement):
        raise MessageRejected(RejectReason.BAD_SIGNATURE, "node signature does not verify")
    signable = encode_defunct(text=evm_message(network_id, binding.node_public_key))
    try:
        recovered = Account.recover_message(signable, signature=binding.evm_signature)
    except (BadSignature, ValidationError, ValueError):
        raise MessageRejected(RejectReason.BAD_SIGNATURE, "EVM signature is invalid") from None
    if recovered != binding.evm_address:
        raise MessageRejected(RejectReason.BAD_SIGNATURE, "EVM signature is from another account")
