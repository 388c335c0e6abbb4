"""Test helpers that speak raw GossipSub to a libp2p transport, as a hostile peer would.

A hostile peer is not bound by py-libp2p's publishing code: it writes whatever RPC it likes on
a gossipsub stream. These helpers do exactly that from a real host (the sender transport's),
so the receiving side sees the bytes a real attacker would send.
"""

from __future__ import annotations

import hashlib

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_varint_prefixed

from adapters.transport.libp2p_transport import Libp2pTransport

_LINGER_S = 0.2
"""How long the raw stream stays open after writing, so the receiver reads it before EOF."""


def gossip_topic(transport: Libp2pTransport, topic: str) -> str:
    """The GossipSub topic a seedswarm topic travels on."""
    return f"/seedswarm/{transport.network_id}/{topic}"


def undecodable_key_message(topic: str, data: bytes) -> rpc_pb2.Message:
    """Issue 15 (4): `from` a sha256 multihash (no key inside it), `key` not a public key, so
    py-libp2p's signature check falls back to decoding `key` and raises DecodeError."""
    sha256_multihash = b"\x12\x20" + hashlib.sha256(b"nobody").digest()
    return rpc_pb2.Message(
        from_id=sha256_multihash, data=data, seqno=(1).to_bytes(8, "big"),
        topicIDs=[topic], signature=b"\x01" * 64, key=b"\xff\xfe not a protobuf key",
    )


def unsigned_message(sender: Libp2pTransport, topic: str, data: bytes,
                     signature: bytes = b"") -> rpc_pb2.Message:
    """A message claiming to come from `sender`, with no signature (or the one given)."""
    return rpc_pb2.Message(
        from_id=ID.from_base58(sender.peer_id).to_bytes(), data=data,
        seqno=(7).to_bytes(8, "big"), topicIDs=[topic], signature=signature,
    )


async def send_raw(sender: Libp2pTransport, to_peer: str, *messages: rpc_pb2.Message) -> None:
    """Write one RPC publishing `messages` on a fresh gossipsub stream from `sender`'s host."""
    node = sender._node  # the test plays a peer below the transport API
    rpc = rpc_pb2.RPC(publish=list(messages))

    async def write() -> None:
        host = node._require_host()
        stream = await host.new_stream(ID.from_base58(to_peer), [TProtocol(PROTOCOL_ID_V11)])
        await stream.write(encode_varint_prefixed(rpc.SerializeToString()))
        await trio.sleep(_LINGER_S)
        await stream.close()

    await sender._require_bridge().call(write)


def forget_seen(transport: Libp2pTransport) -> None:
    """Empty the host's seen-message cache: what py-libp2p does by itself ~120 s after a
    message was last seen, after which the same gossip frame is accepted again."""
    pubsub = transport._node._pubsub
    assert pubsub is not None, "the transport is not running"
    pubsub.seen_messages.cache.clear()
