"""The MQTT transport: aiomqtt (QoS 1) against a broker (embedded amqtt or mosquitto).

Topics map to `seedswarm/<network id>/t/<topic>`. Direct requests travel as envelopes to the
target's inbox `seedswarm/<network id>/rpc/<peer id>` and responses come back to the
requester's inbox, paired by request id. A request to a peer that is not connected cannot be
refused by a broker, so it ends in RequestTimeout.

The broker authenticates nobody, so every frame is signed with the node's key
(adapters.transport.mqtt_wire) and verified before anything else: the sender's peer id is the
one derived from the signing key, never the one a frame declares. A responder learns who asks
that way, and a requester accepts a response only if it is signed by the peer it asked.

Keys cost nothing, so the verifier keeps registered members (`recognize_members`) apart from
strangers: a flood of frames from throw-away keys spends the strangers' small budget and
table, never a member's place; an answer to this node's own request counts as a member's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field

import aiomqtt

from adapters.transport.base import (
    Limits,
    Request,
    RequestFailed,
    Traits,
    TransportClosed,
    TransportError,
)
from adapters.transport.core import TransportCore, raise_for_status
from adapters.transport.mqtt_wire import (
    Auth,
    Envelope,
    FrameVerifier,
    MemberCheck,
    PublishEnvelope,
    Refused,
    RequestEnvelope,
    ResponseEnvelope,
    SequenceCounter,
    VerifierLimits,
    decode,
    seal,
)
from adapters.transport.names import check_segment
from adapters.transport.stats import DropReason
from protocol.identity import NodeKey

_TRAITS = Traits(ordered_per_publisher=True, may_replay_recent=False)
_QOS = 1
_ENVELOPE_HEADROOM = 1024


@dataclass(frozen=True)
class MqttConfig:
    """Where the broker is and how to talk to it."""

    host: str = "127.0.0.1"
    port: int = 1883
    keepalive_s: int = 30
    operation_timeout_s: float = 30.0
    """Bound on connect, subscribe and each publish acknowledgement."""
    reconnect_limit_s: float = 120.0
    """How long to keep reconnecting to a lost broker before the transport fails for good
    (callers size it from the round length)."""
    root: str = "seedswarm"
    verifier: VerifierLimits = field(default_factory=VerifierLimits)
    """Freshness window and replay-state bounds for inbound frames."""
    password: str = field(default="", repr=False)
    """The broker account's password (a deployment's mosquitto: adapters.transport.
    broker_auth); the user name is the node's peer id. Empty: connect anonymously."""


@dataclass(frozen=True)
class _Pending:
    """An outstanding request: only `peer` may answer it."""

    peer: str
    protocol: str
    response: asyncio.Future[ResponseEnvelope]


_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 8.0


class MqttTransport(TransportCore):
    """Publish/subscribe and direct requests through an MQTT broker."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        key: NodeKey,
        network_id: str,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(network_id, limits or Limits(), "mqtt")
        check_segment(config.root, "MQTT root")
        self._config = config
        self._key = key
        self._peer_id = check_segment(key.peer_id, "peer id")
        self._prefix = f"{config.root}/{self._network_id}"
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._handlers_running: set[asyncio.Task[None]] = set()
        self._pending: dict[int, _Pending] = {}
        self._request_ids = itertools.count(secrets.randbits(48))
        self._seq = SequenceCounter()
        self._verifier = FrameVerifier(self._network_id, config.verifier)

    @property
    def peer_id(self) -> str:
        return self._peer_id

    def recognize_members(self, members: MemberCheck) -> None:
        """From now on, keys `members` does not know share the strangers' budget."""
        self._verifier.recognize(members)

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return (f"mqtt://{self._config.host}:{self._config.port}",)

    @property
    def traits(self) -> Traits:
        return _TRAITS

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        """The broker delivers to every acknowledged subscription: nothing to wait for."""

    # -- lifecycle ------------------------------------------------------------------------

    async def _open(self) -> None:
        client = await self._connect()
        self._client = client
        await self._call(client.subscribe(self._inbox(self._peer_id), qos=_QOS))
        self._reader = asyncio.create_task(self._read_loop(client), name="mqtt-reader")

    async def _connect(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self._config.host,
            self._config.port,
            # not the peer id: anyone may connect under a known client id and so evict its
            # owner from the broker
            identifier=f"sw-{secrets.token_hex(10)}",
            clean_session=True,
            keepalive=self._config.keepalive_s,
            username=self._peer_id if self._config.password else None,
            password=self._config.password or None,
            timeout=self._config.operation_timeout_s,
            # paho leaves Nagle on: every small QoS 1 exchange then waits out a delayed ACK
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            where = f"{self._config.host}:{self._config.port}"
            raise TransportError(f"cannot connect to the MQTT broker at {where}: {exc}") from exc
        return client

    async def _close(self) -> None:
        tasks = [t for t in (self._reader, *self._handlers_running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reader = None
        self._handlers_running.clear()
        for pending in self._pending.values():
            if not pending.response.done():
                pending.response.set_exception(TransportClosed("transport stopped"))
        self._pending.clear()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    # -- publish / subscribe --------------------------------------------------------------

    async def _join(self, topic: str) -> None:
        await self._call(self._require_client().subscribe(self._topic(topic), qos=_QOS))

    async def _leave(self, topic: str) -> None:
        await self._call(self._require_client().unsubscribe(self._topic(topic)))

    async def _send_publish(self, topic: str, data: bytes) -> None:
        mqtt_topic = self._topic(topic)
        frame = self._seal(PublishEnvelope(self._auth(), data), mqtt_topic)
        # QoS 1: returns once the broker acknowledged, which paces a fast publisher
        await self._call(self._require_client().publish(mqtt_topic, frame, qos=_QOS))

    # -- direct requests ------------------------------------------------------------------

    async def _send_request(self, peer: str, protocol: str, data: bytes, limit_s: float) -> bytes:
        check_segment(peer, "peer id")
        request_id = next(self._request_ids)
        response: asyncio.Future[ResponseEnvelope] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(peer, protocol, response)
        try:
            inbox = self._inbox(peer)
            frame = self._seal(RequestEnvelope(self._auth(), request_id, protocol, data), inbox)
            await self._call(self._require_client().publish(inbox, frame, qos=_QOS))
            answer = await response
        finally:
            self._pending.pop(request_id, None)
        raise_for_status(answer.status, peer, protocol)
        if len(answer.data) > self._limits.max_message_bytes:
            self._stats.record_drop(DropReason.OVERSIZED_INBOUND, f"response from {peer}")
            raise RequestFailed(f"response from {peer} too large")
        return answer.data

    async def _serve_request(
        self, client: aiomqtt.Client, request: RequestEnvelope, asker: str
    ) -> None:
        status, payload = await self._answer(Request(asker, request.protocol, request.data))
        inbox = self._inbox(asker)
        reply = ResponseEnvelope(self._auth(), request.request_id, status, payload)
        try:
            await client.publish(inbox, self._seal(reply, inbox), qos=_QOS)
        except aiomqtt.MqttError as exc:
            self._log.warning("could not answer %s from %s: %s", request.protocol, asker, exc)

    # -- inbound --------------------------------------------------------------------------

    async def _read_loop(self, client: aiomqtt.Client) -> None:
        while True:
            try:
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        self._dispatch_safely(client, str(message.topic), bytes(payload))
                    else:
                        self._stats.record_drop(
                            DropReason.MALFORMED, f"non-bytes payload on {message.topic}"
                        )
            except aiomqtt.MqttError as exc:
                self._log.warning("lost the MQTT broker connection: %s; reconnecting", exc)
            reconnected = await self._reconnect()
            if reconnected is None:
                return
            client = reconnected

    async def _reconnect(self) -> aiomqtt.Client | None:
        """A new connection with every subscription restored, after backing off; None (and
        the transport failed) once `reconnect_limit_s` passed without the broker."""
        old, self._client = self._client, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.__aexit__(None, None, None)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._config.reconnect_limit_s
        delay = _BACKOFF_FIRST_S
        while loop.time() < give_up:
            await asyncio.sleep(min(delay, max(0.0, give_up - loop.time())))
            delay = min(2 * delay, _BACKOFF_MAX_S)
            try:
                client = await self._connect()
                await client.subscribe(self._inbox(self._peer_id), qos=_QOS)
                for topic in list(self._subscribers):
                    await client.subscribe(self._topic(topic), qos=_QOS)
            except (TransportError, aiomqtt.MqttError) as exc:
                self._log.info("MQTT broker still unreachable: %s", exc)
                continue
            self._client = client
            self._log.info("reconnected to the MQTT broker; subscriptions restored")
            return client
        where = f"{self._config.host}:{self._config.port}"
        self._fail(TransportError(
            f"lost the MQTT broker at {where} for {self._config.reconnect_limit_s:.0f} s: is it "
            "running? (the node exits so that its supervisor restarts it)"))
        return None

    def _dispatch_safely(self, client: aiomqtt.Client, topic: str, raw: bytes) -> None:
        # one hostile frame must never end the read loop, whatever it trips over
        try:
            self._dispatch(client, topic, raw)
        except Exception as exc:
            self._log.exception("unexpected failure on a frame from %s", topic)
            self._stats.record_drop(DropReason.MALFORMED, f"{topic}: {exc!r}")

    def _dispatch(self, client: aiomqtt.Client, topic: str, raw: bytes) -> None:
        # Moderately oversized envelopes are decoded so that a request can still be answered
        # with TOO_LARGE; beyond this ceiling they are not even parsed.
        if len(raw) > 2 * self._limits.max_message_bytes + _ENVELOPE_HEADROOM:
            self._stats.record_drop(DropReason.OVERSIZED_INBOUND, f"{len(raw)} bytes on {topic}")
            return
        try:
            envelope = decode(raw)
            sender = self._verifier.verify(
                envelope, topic, solicited=self._solicited(envelope, topic))
        except ValueError as exc:  # MalformedEnvelope, or a topic that cannot be signed
            self._stats.record_drop(DropReason.MALFORMED, f"{topic}: {exc}")
            return
        except Refused as refusal:
            self._stats.record_drop(refusal.reason, refusal.detail)
            return
        publish_prefix = f"{self._prefix}/t/"
        if isinstance(envelope, PublishEnvelope) and topic.startswith(publish_prefix):
            self._deliver(topic[len(publish_prefix) :], envelope.data, sender)
        elif isinstance(envelope, PublishEnvelope) or topic != self._inbox(self._peer_id):
            self._stats.record_drop(DropReason.MALFORMED, f"{type(envelope).__name__} on {topic}")
        elif isinstance(envelope, RequestEnvelope):
            self._start_serving(client, envelope, sender)
        else:
            self._accept_response(envelope, sender)

    def _solicited(self, envelope: Envelope, topic: str) -> bool:
        """A response on this node's inbox to a pending request, from the key of the peer
        asked (its signature is checked next): never budgeted as a stranger's."""
        if not isinstance(envelope, ResponseEnvelope) or topic != self._inbox(self._peer_id):
            return False
        pending = self._pending.get(envelope.request_id)
        if pending is None or pending.response.done():
            return False
        return self._verifier.peer_id(envelope.auth.public_key) == pending.peer

    def _accept_response(self, response: ResponseEnvelope, sender: str) -> None:
        pending = self._pending.get(response.request_id)
        if pending is None or pending.response.done():
            return  # late (timed out) or already answered
        if sender != pending.peer:
            self._stats.record_drop(
                DropReason.WRONG_RESPONDER,
                f"{pending.protocol} request to {pending.peer} answered by {sender}",
            )
            return
        pending.response.set_result(response)

    def _start_serving(self, client: aiomqtt.Client, request: RequestEnvelope, asker: str) -> None:
        task = asyncio.create_task(self._serve_request(client, request, asker))
        self._handlers_running.add(task)
        task.add_done_callback(self._handlers_running.discard)

    # -- helpers --------------------------------------------------------------------------

    def _auth(self) -> Auth:
        return Auth(self._key.public.raw, self._seq.next(), self._peer_id)

    def _seal(self, envelope: Envelope, mqtt_topic: str) -> bytes:
        return seal(envelope, self._key, network_id=self._network_id, topic=mqtt_topic)

    def _topic(self, topic: str) -> str:
        return f"{self._prefix}/t/{topic}"

    def _inbox(self, peer: str) -> str:
        return f"{self._prefix}/rpc/{peer}"

    def _require_client(self) -> aiomqtt.Client:
        if self._client is None:
            raise TransportClosed("MQTT transport is not connected")
        return self._client

    @staticmethod
    async def _call(operation: Awaitable[object]) -> None:
        try:
            await operation
        except aiomqtt.MqttError as exc:
            raise TransportError(f"MQTT operation failed: {exc}") from exc
