"""The MQTT transport: aiomqtt (QoS 1) against a broker (embedded amqtt or mosquitto).

Topics map to `seedswarm/<network id>/t/<topic>`. Direct requests travel as envelopes to the
target's inbox `seedswarm/<network id>/rpc/<peer id>` and responses come back to the
requester's inbox, paired by request id. A request to a peer that is not connected cannot be
refused by a broker, so it ends in RequestTimeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass

import aiomqtt

from protocol.transport.base import (
    Limits,
    Request,
    RequestFailed,
    Traits,
    TransportClosed,
    TransportError,
)
from protocol.transport.core import TransportCore, raise_for_status
from protocol.transport.mqtt_wire import (
    MalformedEnvelope,
    PublishEnvelope,
    RequestEnvelope,
    ResponseEnvelope,
    decode,
    encode,
)
from protocol.transport.names import check_segment
from protocol.transport.stats import DropReason

_TRAITS = Traits(ordered_per_publisher=True, may_replay_recent=False)
_QOS = 1
_ENVELOPE_HEADROOM = 1024
_SEEN_CAPACITY = 1 << 16


@dataclass(frozen=True)
class MqttConfig:
    """Where the broker is and how to talk to it."""

    host: str = "127.0.0.1"
    port: int = 1883
    keepalive_s: int = 30
    operation_timeout_s: float = 30.0
    """Bound on connect, subscribe and each publish acknowledgement."""
    root: str = "seedswarm"


class MqttTransport(TransportCore):
    """Publish/subscribe and direct requests through an MQTT broker."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        peer_id: str,
        network_id: str,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(network_id, limits or Limits(), "mqtt")
        check_segment(config.root, "MQTT root")
        self._config = config
        self._peer_id = check_segment(peer_id, "peer id")
        self._prefix = f"{config.root}/{self._network_id}"
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._handlers_running: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[ResponseEnvelope]] = {}
        self._request_ids = itertools.count(secrets.randbits(48))
        self._session = secrets.randbits(64)
        self._seq = itertools.count()
        self._seen: OrderedDict[tuple[str, int, int], None] = OrderedDict()

    @property
    def peer_id(self) -> str:
        return self._peer_id

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
        client = aiomqtt.Client(
            self._config.host,
            self._config.port,
            identifier=self._peer_id,
            clean_session=True,
            keepalive=self._config.keepalive_s,
            timeout=self._config.operation_timeout_s,
            # paho leaves Nagle on: every small QoS 1 exchange then waits out a delayed ACK
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise TransportError(f"cannot connect to MQTT broker: {exc}") from exc
        self._client = client
        await self._call(client.subscribe(self._inbox(self._peer_id), qos=_QOS))
        self._reader = asyncio.create_task(self._read_loop(client), name="mqtt-reader")

    async def _close(self) -> None:
        tasks = [t for t in (self._reader, *self._handlers_running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reader = None
        self._handlers_running.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportClosed("transport stopped"))
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
        envelope = PublishEnvelope(self._session, next(self._seq), self._peer_id, data)
        # QoS 1: returns once the broker acknowledged, which paces a fast publisher
        await self._call(
            self._require_client().publish(self._topic(topic), encode(envelope), qos=_QOS)
        )

    # -- direct requests ------------------------------------------------------------------

    async def _send_request(self, peer: str, protocol: str, data: bytes, limit_s: float) -> bytes:
        check_segment(peer, "peer id")
        request_id = next(self._request_ids)
        response: asyncio.Future[ResponseEnvelope] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = response
        try:
            envelope = RequestEnvelope(request_id, self._peer_id, protocol, data)
            await self._call(
                self._require_client().publish(self._inbox(peer), encode(envelope), qos=_QOS)
            )
            answer = await response
        finally:
            self._pending.pop(request_id, None)
        raise_for_status(answer.status, peer, protocol)
        if len(answer.data) > self._limits.max_message_bytes:
            self._stats.record_drop(DropReason.OVERSIZED_INBOUND, f"response from {peer}")
            raise RequestFailed(f"response from {peer} too large")
        return answer.data

    async def _serve_request(self, client: aiomqtt.Client, request: RequestEnvelope) -> None:
        status, payload = await self._answer(
            Request(request.sender, request.protocol, request.data)
        )
        reply = ResponseEnvelope(request.request_id, status, payload)
        try:
            await client.publish(self._inbox(request.sender), encode(reply), qos=_QOS)
        except aiomqtt.MqttError as exc:
            self._log.warning(
                "could not answer %s from %s: %s", request.protocol, request.sender, exc
            )

    # -- inbound --------------------------------------------------------------------------

    async def _read_loop(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    self._dispatch(client, str(message.topic), bytes(payload))
                else:
                    self._stats.record_drop(
                        DropReason.MALFORMED, f"non-bytes payload on {message.topic}"
                    )
        except aiomqtt.MqttError as exc:
            self._log.error("lost the MQTT broker connection: %s", exc)

    def _dispatch(self, client: aiomqtt.Client, topic: str, raw: bytes) -> None:
        # Moderately oversized envelopes are decoded so that a request can still be answered
        # with TOO_LARGE; beyond this ceiling they are not even parsed.
        if len(raw) > 2 * self._limits.max_message_bytes + _ENVELOPE_HEADROOM:
            self._stats.record_drop(DropReason.OVERSIZED_INBOUND, f"{len(raw)} bytes on {topic}")
            return
        try:
            envelope = decode(raw)
        except MalformedEnvelope as exc:
            self._stats.record_drop(DropReason.MALFORMED, f"{topic}: {exc}")
            return
        if isinstance(envelope, PublishEnvelope):
            self._accept_publish(topic, envelope)
        elif topic != self._inbox(self._peer_id):
            self._stats.record_drop(DropReason.MALFORMED, f"request envelope on {topic}")
        elif isinstance(envelope, RequestEnvelope):
            self._start_serving(client, envelope)
        else:
            future = self._pending.get(envelope.request_id)
            if future is not None and not future.done():
                future.set_result(envelope)

    def _accept_publish(self, topic: str, envelope: PublishEnvelope) -> None:
        prefix = f"{self._prefix}/t/"
        if not topic.startswith(prefix):
            self._stats.record_drop(DropReason.MALFORMED, f"publish envelope on {topic}")
            return
        key = (envelope.sender, envelope.session, envelope.seq)
        if key in self._seen:
            self._stats.record_drop(DropReason.DUPLICATE, f"redelivery {key} on {topic}")
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_CAPACITY:
            self._seen.popitem(last=False)
        self._deliver(topic[len(prefix) :], envelope.data, envelope.sender)

    def _start_serving(self, client: aiomqtt.Client, request: RequestEnvelope) -> None:
        try:
            check_segment(request.sender, "peer id")
        except ValueError:
            self._stats.record_drop(DropReason.MALFORMED, f"request from {request.sender!r}")
            return
        task = asyncio.create_task(self._serve_request(client, request))
        self._handlers_running.add(task)
        task.add_done_callback(self._handlers_running.discard)

    # -- helpers --------------------------------------------------------------------------

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
