"""The trio side of the libp2p transport: one py-libp2p host with GossipSub and request streams.

Everything here runs inside the trio run of a `TrioBridge`; `libp2p_transport` is the asyncio
face. py-libp2p 0.8.1 has traps this module defuses (see research/dependency-stack.md §1):

- Subscription channels hold 32 messages and drop the rest with a warning: deliveries are taken
  straight out of `notify_subscriptions` into the transport's own counted queues instead.
- Per-peer outbound queues hold 32 RPCs and drop the rest at DEBUG level: they are enlarged,
  every drop is counted, and `publish` waits while any peer's queue is above a window.
- GossipSub's default spam limit (10 msg/s per peer and topic) silently discards bursts: it is
  off unless configured. Its IP-diversity ("eclipse") logic is off, since on one host every
  peer shares an address; adaptive degree changes are off to keep the mesh predictable.
- Outbound RPCs above 1 MiB are dropped by the sender: the RPC size ceiling is raised above
  the transport's own message limit, which is then enforced (and counted) by the transport.
- Only TCP + Noise + Yamux are offered: mplex deadlocks under bidirectional load.
- One exception in a message's validation path (e.g. a `key` that does not decode) cancels
  the whole pubsub service: every inbound message and RPC is handled inside a guard that
  counts the failure as a malformed message from the peer that sent it. Should the host end
  anyway, `run` reports it through `on_died` instead of raising into the shared trio run.
- A message whose signature is missing or wrong is dropped without a trace: it is checked
  first here, and each one counted (`bad_signature`) against the peer that sent it.
- py-libp2p ids a message by peer id + seqno (its IHAVE/IWANT message cache always does),
  js-libp2p by key + seqno, so they never deduplicate each other: every node here ids a
  message by the SHA-256 of its data instead (`gossip_message_id`, the same rule in the
  seen-cache and the message cache), so the same bytes are one message whoever publishes or
  relays them, as with any libp2p implementation configured for content-addressed ids.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID as GOSSIPSUB_V10
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11 as GOSSIPSUB_V11
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.mcache import CacheEntry, MessageCache
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue
from libp2p.pubsub.validators import signature_validator
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from adapters.transport.base import Request, RequestFailed, TransportClosed
from adapters.transport.framing import (
    FrameTooLarge,
    ResponseStatus,
    encode_request,
    encode_response,
    read_request,
    read_response,
)
from adapters.transport.stats import DropReason, TransportStats

_log = logging.getLogger("adapters.transport.libp2p")

ED25519_SEED_BYTES = 32
_RPC_HEADROOM = 64 * 1024  # signature, key, seqno, topic and control piggyback of one RPC
_PUBLISH_POLL_S = 0.001

OnMessage = Callable[[str, bytes, str, str], None]
"""(gossip topic, data, publisher's peer id, peer id of the neighbour that forwarded it)."""
OnDied = Callable[[str], None]

_FORWARDER: contextvars.ContextVar[ID] = contextvars.ContextVar("libp2p_forwarder")
"""The neighbour whose RPC carried the message being pushed (each push is its own trio task,
so `notify_subscriptions`, called inside it, reads its own message's forwarder)."""


class _Started(Protocol):
    """The part of trio's task_status used here (the installed trio-stubs predate trio's own
    annotations and do not export trio.TaskStatus)."""

    def started(self, value: tuple[str, ...]) -> None: ...


Answer = Callable[[Request], Awaitable[tuple[ResponseStatus, bytes]]]


@dataclass(frozen=True)
class Libp2pConfig:
    """How one libp2p host listens, joins and paces itself."""

    key_seed: bytes
    """32-byte Ed25519 private seed (protocol.identity.NodeKey.to_bytes()): fixes the peer id."""
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    bootstrap: tuple[str, ...] = ()
    """Multiaddrs ending in /p2p/<peer id>, dialled on start."""
    gossip_degree: int = 6
    gossip_degree_low: int = 4
    gossip_degree_high: int = 12
    heartbeat_interval_s: int = 1
    peer_queue_capacity: int = 4096
    """Outbound RPCs held per peer (py-libp2p's default of 32 drops bursts)."""
    publish_window: int = 256
    """`publish` waits while any peer has this many RPCs queued, leaving room for relays."""
    max_messages_per_topic_per_second: float | None = None
    """GossipSub's per-peer spam limit; None switches it off."""
    dial_timeout_s: float = 10.0
    stream_timeout_s: float = 60.0
    """Bound on serving one inbound request (read, handle, write)."""
    shutdown_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.key_seed) != ED25519_SEED_BYTES:
            raise ValueError(f"key_seed must be {ED25519_SEED_BYTES} bytes")
        if not 0 < self.publish_window <= self.peer_queue_capacity:
            raise ValueError("publish_window must be in (0, peer_queue_capacity]")


def gossip_message_id(message: rpc_pb2.Message) -> bytes:
    """A gossip message's id on every seedswarm node: the SHA-256 of its data."""
    return hashlib.sha256(message.data).digest()


class _ContentMessageCache(MessageCache):
    """GossipSub's recent-message cache (what IHAVE advertises and IWANT fetches), keyed by
    `gossip_message_id` like the seen-cache (py-libp2p keys it by peer id + seqno always)."""

    def put(self, msg: rpc_pb2.Message) -> None:
        mid = gossip_message_id(msg)
        if mid in self.msgs:
            return
        self.msgs[mid] = msg
        self.history[0].append(CacheEntry(mid, msg.topicIDs))


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """The libp2p key pair of a 32-byte Ed25519 seed (RFC 8032)."""
    return create_new_key_pair(seed)


class _CountingGossipSub(GossipSub):
    """GossipSub that reports every outbound RPC it has to drop."""

    def __init__(self, *args: Any, on_drop: Callable[[ID, str], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_drop = on_drop
        self.mcache = _ContentMessageCache(self.mcache.window_size, self.mcache.history_size)

    def _handle_dropped_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, reason: str) -> None:
        if rpc.publish:
            self._on_drop(peer_id, reason)
        super()._handle_dropped_rpc(peer_id, rpc, reason)


class _SizedQueues(dict[ID, RpcQueue]):
    """Pubsub's per-peer queue map, resizing each queue as py-libp2p creates it."""

    def __init__(self, capacity: int, max_rpc_bytes: int) -> None:
        super().__init__()
        self._capacity = capacity
        self._max_rpc_bytes = max_rpc_bytes

    def __setitem__(self, peer: ID, queue: RpcQueue) -> None:
        queue.max_message_size = self._max_rpc_bytes
        # RpcQueue takes its bound only as a constructor argument, and Pubsub constructs it
        queue._queue.max_size = self._capacity
        super().__setitem__(peer, queue)


class _DeliveringPubsub(Pubsub):
    """Pubsub that hands each accepted message to a callback instead of a 32-slot channel."""

    def __init__(
        self,
        host: IHost,
        router: GossipSub,
        *,
        on_message: Callable[[str, rpc_pb2.Message, ID], None],
        on_invalid: Callable[[ID, str], None],
        on_unsigned: Callable[[ID, str], None],
        queue_capacity: int,
        max_rpc_bytes: int,
    ) -> None:
        super().__init__(host, router, strict_signing=True, max_inbound_rpc_size=max_rpc_bytes,
                         msg_id_constructor=gossip_message_id)
        self.peer_queues = _SizedQueues(queue_capacity, max_rpc_bytes)
        self._on_message = on_message
        self._on_invalid = on_invalid
        self._on_unsigned = on_unsigned

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        """Validate, deliver and relay one message; any error refuses it, never the service."""
        token = _FORWARDER.set(msg_forwarder)
        try:
            if not self._signed_or_seen(msg_forwarder, msg):
                self._on_unsigned(msg_forwarder, "unsigned or forged gossip message refused")
                return
            await super().push_msg(msg_forwarder, msg)
        except Exception as exc:
            self._on_invalid(msg_forwarder, f"message refused: {_one_line(exc)}")
        finally:
            _FORWARDER.reset(token)

    def _signed_or_seen(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """py-libp2p drops a message whose signature fails without a trace: check it first so
        each is counted (a seen one is dropped as a duplicate; py-libp2p checks again after)."""
        if msg_forwarder == self.my_id or self._is_msg_seen(msg):
            return True
        return signature_validator(msg)

    async def continuously_read_stream(self, stream: INetStream) -> None:
        """Read a peer's RPCs; one that breaks py-libp2p's handling ends that stream only."""
        try:
            await super().continuously_read_stream(stream)
        except Exception as exc:
            peer = stream.muxed_conn.peer_id
            self._on_invalid(peer, f"RPC stream closed: {_one_line(exc)}")
            await _reset_quietly(stream)

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        forwarder = _FORWARDER.get(self.my_id)
        for topic in publish_message.topicIDs:
            if topic in self.subscribed_topics_send:
                self._on_message(topic, publish_message, forwarder)


class Libp2pNode:
    """One host, its GossipSub router and its request-stream handlers (trio side)."""

    def __init__(
        self,
        config: Libp2pConfig,
        *,
        max_message_bytes: int,
        stats: TransportStats,
        on_message: OnMessage,
        answer: Answer,
        on_died: OnDied,
    ) -> None:
        self._config = config
        self._max_message_bytes = max_message_bytes
        self._stats = stats
        self._on_message = on_message
        self._answer = answer
        self._on_died = on_died
        self._key_pair = key_pair_from_seed(config.key_seed)
        self._peer_id = ID.from_pubkey(self._key_pair.public_key)
        self._protocols: dict[str, str] = {}
        self._host: IHost | None = None
        self._pubsub: _DeliveringPubsub | None = None
        self._gossipsub: _CountingGossipSub | None = None
        self._publish_lock = trio.Lock()
        self._stop = trio.Event()
        self._finished = trio.Event()
        self._scope = trio.CancelScope()
        self._launched = False
        self._serving = False
        self._addrs: tuple[str, ...] = ()

    @property
    def peer_id(self) -> str:
        return self._peer_id.to_base58()

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return self._addrs

    async def run(self, *, task_status: _Started) -> None:
        """Build, listen, dial bootstrap peers, report the listen addresses, serve until stop.

        A failure to start raises (to `nursery.start`); once serving, an end that `stop` did
        not ask for is reported to `on_died` and never raised into the shared trio run, whose
        other hosts must live on.
        """
        self._launched = True
        try:
            with self._scope:
                await self._serve(task_status)
        except Exception as exc:
            if not self._serving:
                raise
            self._on_died(_one_line(exc))
        else:
            if self._serving and not self._stop.is_set():
                self._on_died("it stopped by itself")
        finally:
            self._host = self._pubsub = self._gossipsub = None
            self._finished.set()

    async def stop(self) -> None:
        """Close every connection and wait for the host's tasks to end (cancel after a grace)."""
        self._stop.set()
        if not self._launched:
            return
        with trio.move_on_after(self._config.shutdown_grace_s):
            await self._finished.wait()
            return
        _log.warning("libp2p host %s did not stop in time; cancelling it", self.peer_id)
        self._scope.cancel()
        await self._finished.wait()

    async def _serve(self, task_status: _Started) -> None:
        host, gossipsub, pubsub = self._build()
        listen = multiaddr.Multiaddr(
            f"/ip4/{self._config.listen_host}/tcp/{self._config.listen_port}"
        )
        try:
            async with (
                host.run([listen]),
                background_trio_service(pubsub),
                background_trio_service(gossipsub),
            ):
                await pubsub.wait_until_ready()
                self._host, self._pubsub, self._gossipsub = host, pubsub, gossipsub
                for libp2p_id in self._protocols:
                    host.set_stream_handler(TProtocol(libp2p_id), self._handle_stream)
                self._addrs = tuple(str(addr) for addr in host.get_addrs())
                await self._dial_bootstrap()
                task_status.started(self._addrs)
                self._serving = True
                await self._stop.wait()
        finally:
            # Pubsub's seen-message cache sweeps in its own thread and nothing in py-libp2p
            # ever stops it: one leaked thread per host otherwise.
            pubsub.seen_messages.stop()

    def _build(self) -> tuple[IHost, _CountingGossipSub, _DeliveringPubsub]:
        config = self._config
        noise = NoiseTransport(self._key_pair, noise_privkey=create_x25519_key_pair().private_key)
        host = new_host(
            key_pair=self._key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        )
        spam_limit = config.max_messages_per_topic_per_second
        max_rpc_bytes = 2 * self._max_message_bytes + _RPC_HEADROOM
        gossipsub = _CountingGossipSub(
            [GOSSIPSUB_V11, GOSSIPSUB_V10],
            degree=config.gossip_degree,
            degree_low=config.gossip_degree_low,
            degree_high=config.gossip_degree_high,
            heartbeat_interval=config.heartbeat_interval_s,
            spam_protection_enabled=spam_limit is not None,
            max_messages_per_topic_per_second=spam_limit or 0.0,
            eclipse_protection_enabled=False,
            adaptive_gossip_enabled=False,
            max_pending_messages_per_peer=config.peer_queue_capacity,
            on_drop=self._count_queue_drop,
        )
        pubsub = _DeliveringPubsub(
            host,
            gossipsub,
            on_message=self._accept,
            on_invalid=self._count_invalid,
            on_unsigned=self._count_unsigned,
            queue_capacity=config.peer_queue_capacity,
            max_rpc_bytes=max_rpc_bytes,
        )
        return host, gossipsub, pubsub

    async def _dial_bootstrap(self) -> None:
        async with trio.open_nursery() as nursery:
            for addr in self._config.bootstrap:
                nursery.start_soon(self._dial_logged, addr)

    async def _dial_logged(self, addr: str) -> None:
        try:
            await self.connect(addr)
        except Exception as exc:
            _log.warning("could not reach bootstrap peer %s: %r", addr, exc)

    async def connect(self, addr: str) -> None:
        """Dial a peer by its /p2p/ multiaddr (no-op if already connected)."""
        host = self._require_host()
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(self._config.dial_timeout_s):
            await host.connect(info)

    def _accept(self, topic: str, message: rpc_pb2.Message, forwarder: ID) -> None:
        self._on_message(topic, message.data, ID(message.from_id).to_base58(),
                         forwarder.to_base58())

    def _count_invalid(self, peer: ID, detail: str) -> None:
        self._stats.record_drop(DropReason.MALFORMED, f"gossip from {peer}: {detail}")

    def _count_unsigned(self, peer: ID, detail: str) -> None:
        self._stats.record_drop(DropReason.BAD_SIGNATURE, f"gossip from {peer}: {detail}")

    def _count_queue_drop(self, peer: ID, reason: str) -> None:
        self._stats.record_drop(
            DropReason.PEER_QUEUE_FULL, f"outbound gossip RPC to {peer} dropped ({reason})"
        )

    # -- publish / subscribe --------------------------------------------------------------

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish once every peer's outbound queue is below the window (backpressure)."""
        pubsub = self._require_pubsub()
        async with self._publish_lock:
            # py-libp2p's queues signal nothing when they drain, so poll them
            while self._busiest_queue(pubsub) >= self._config.publish_window:
                if self._stop.is_set():
                    raise TransportClosed("libp2p host stopped while publishing")
                await trio.sleep(_PUBLISH_POLL_S)
            await pubsub.publish(topic, data)

    async def subscribe(self, topic: str) -> None:
        await self._require_pubsub().subscribe(topic)

    async def unsubscribe(self, topic: str) -> None:
        await self._require_pubsub().unsubscribe(topic)

    def reachable_subscribers(self, topic: str) -> int:
        """Peers our next publish on `topic` goes to directly: mesh if joined, else fanout."""
        pubsub, gossipsub = self._pubsub, self._gossipsub
        if pubsub is None or gossipsub is None:
            return 0
        if topic in pubsub.subscribed_topics_send:
            return len(gossipsub.mesh.get(topic, ()))
        return len(pubsub.peer_topics.get(topic, ()))

    def connected_peers(self) -> list[str]:
        host = self._host
        return [] if host is None else [p.to_base58() for p in host.get_connected_peers()]

    @staticmethod
    def _busiest_queue(pubsub: Pubsub) -> int:
        return max((len(queue) for queue in pubsub.peer_queues.values()), default=0)

    # -- direct requests ------------------------------------------------------------------

    def add_protocol(self, libp2p_id: str, name: str) -> None:
        """Route inbound streams for `libp2p_id` to the handler registered as `name`."""
        self._protocols[libp2p_id] = name
        if self._host is not None:
            self._host.set_stream_handler(TProtocol(libp2p_id), self._handle_stream)

    async def request(self, peer: str, libp2p_id: str, data: bytes) -> tuple[ResponseStatus, bytes]:
        """Open a stream to `peer`, send one request frame, read one response frame."""
        host = self._require_host()
        try:
            peer_id = ID.from_base58(peer)
        except Exception as exc:
            raise RequestFailed(f"invalid peer id {peer!r}") from exc
        try:
            stream = await host.new_stream(peer_id, [TProtocol(libp2p_id)])
        except Exception as exc:
            raise RequestFailed(f"cannot open {libp2p_id} stream to {peer}: {exc!r}") from exc
        try:
            await stream.write(encode_request(data))
            return await read_response(_reader(stream), self._max_message_bytes)
        except FrameTooLarge as exc:
            self._stats.record_drop(DropReason.OVERSIZED_INBOUND, f"response from {peer}: {exc}")
            raise RequestFailed(f"response from {peer} too large") from exc
        except Exception as exc:
            raise RequestFailed(f"{libp2p_id} exchange with {peer} failed: {exc!r}") from exc
        finally:
            await _close_quietly(stream)

    async def _handle_stream(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id.to_base58()
        name = self._protocols.get(str(stream.get_protocol()), "")
        try:
            with trio.fail_after(self._config.stream_timeout_s):
                await self._answer_stream(stream, peer, name)
        except Exception as exc:
            _log.debug("request stream from %s failed: %r", peer, exc)
        finally:
            await _close_quietly(stream)

    async def _answer_stream(self, stream: INetStream, peer: str, name: str) -> None:
        try:
            data = await read_request(_reader(stream), self._max_message_bytes)
        except FrameTooLarge as exc:
            self._stats.record_drop(
                DropReason.OVERSIZED_INBOUND, f"{name} request from {peer}: {exc}"
            )
            await stream.write(encode_response(ResponseStatus.TOO_LARGE, b""))
            return
        status, response = await self._answer(Request(peer, name, data))
        await stream.write(encode_response(status, response))

    # -- guards ---------------------------------------------------------------------------

    def _require_host(self) -> IHost:
        if self._host is None:
            raise TransportClosed("libp2p host is not running")
        return self._host

    def _require_pubsub(self) -> _DeliveringPubsub:
        if self._pubsub is None:
            raise TransportClosed("libp2p host is not running")
        return self._pubsub


def _reader(stream: INetStream) -> Callable[[int], Awaitable[bytes]]:
    async def read_exactly(count: int) -> bytes:
        buffer = bytearray()
        while len(buffer) < count:
            chunk = await stream.read(count - len(buffer))
            if not chunk:
                raise EOFError(f"stream ended after {len(buffer)} of {count} bytes")
            buffer += chunk
        return bytes(buffer)

    return read_exactly


def _one_line(exc: BaseException) -> str:
    """An exception as one log line: its type and its first line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


async def _reset_quietly(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception as exc:
        _log.debug("resetting a pubsub stream failed: %r", exc)


async def _close_quietly(stream: INetStream) -> None:
    try:
        await stream.close()
    except Exception as exc:
        _log.debug("closing a request stream failed: %r", exc)
