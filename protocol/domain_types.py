"""Distinct types for the values that cross modules: keys, hashes, digests, amounts, addresses.

Each is a `typing.NewType`: erased at run time (a `PublicKey` is its bytes, a `Wei` its int),
so nothing changes in behaviour or cost, but mypy keeps them apart: a model hash passed where
a node key is expected, or a peer id where an EVM address is, no longer type-checks.

A value gets its type where it is produced (`model_hash`, `message_digest`, `round_beacon`,
`NodePublicKey.raw`, the chain client's getters) or where raw input is validated (the message
decoder, chain reads, keystores, settings), not by casts at the places that use it. Arithmetic
on a `Wei` gives a plain `int`; wrap a computed amount once, where it becomes one.
"""

from __future__ import annotations

from typing import NewType

PublicKey = NewType("PublicKey", bytes)
"""A node's raw 32-byte Ed25519 public key: a message's author, a miner or validator seat."""

ModelHash = NewType("ModelHash", bytes)
"""The 32-byte hash of a model's tensors (protocol.model_hash): a replica's state, a round's
base and result."""

Digest = NewType("Digest", bytes)
"""The 32-byte digest of a signed message (protocol.signing.message_digest): how certificates
name contributions, endorsements name certificates, and replay protection deduplicates."""

Beacon = NewType("Beacon", bytes)
"""A round's 32-byte public randomness (protocol.randomness.round_beacon)."""

Wei = NewType("Wei", int)
"""A token amount in the smallest unit (1e-18 of a token): stakes, rewards, emission,
balances."""

EvmAddress = NewType("EvmAddress", str)
"""An EVM account or contract address, as checksummed 0x-hex text."""

PeerId = NewType("PeerId", str)
"""A node's libp2p peer id (base58btc text, derived from its Ed25519 key by
protocol.identity)."""

__all__ = ["Beacon", "Digest", "EvmAddress", "ModelHash", "PeerId", "PublicKey", "Wei"]
