"""Cost of MQTT frame authentication: per-frame sign / verify time and 3-node gossip latency.

    .venv/bin/python tests/transport/measure_mqtt_auth.py [--messages 200] [--json PATH]

Per frame: `seal` (SHA-256 of the payload + Ed25519 signature + encoding) and `decode` +
`FrameVerifier.verify` (SHA-256 + Ed25519 verification + replay window), for 64-byte and
64 KiB payloads. Gossip: 3 MqttTransports on one broker (embedded amqtt, then mosquitto), each
subscribed to one topic; they take turns publishing timestamped 64-byte payloads, paced, and
every other node records publish -> delivery time. It builds the transport with whichever
constructor the importable adapters.transport.mqtt has, so the same script measures the
unsigned predecessor when that is first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import struct
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.transport.base import Limits
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import EmbeddedBroker, MosquittoBroker
from protocol.identity import NodeKey

NET = "measure-net"
PACE_S = 0.005
_STAMP = struct.Struct(">Qd")


def _key(index: int) -> NodeKey:
    return NodeKey.from_bytes(bytes([index + 1]) * 32)


def _transport(port: int, index: int) -> MqttTransport:
    config, key = MqttConfig(port=port), _key(index)
    if "key" in inspect.signature(MqttTransport).parameters:
        return MqttTransport(config, key=key, network_id=NET, limits=Limits())
    return MqttTransport(config, peer_id=key.peer_id, network_id=NET, limits=Limits())  # type: ignore[call-arg]


def frame_cost(size: int, frames: int) -> dict[str, float] | None:
    """Microseconds per frame to seal, and to decode + verify; None for the unsigned format."""
    try:
        from adapters.transport.mqtt_wire import (
            Auth,
            FrameVerifier,
            PublishEnvelope,
            SequenceCounter,
            VerifierLimits,
            decode,
            seal,
        )
    except ImportError:
        return None
    key, counter, data = _key(0), SequenceCounter(), bytes(size)
    verifier = FrameVerifier(NET, VerifierLimits(history=frames + 1))
    start = time.perf_counter()
    sealed = [
        seal(PublishEnvelope(Auth(key.public.raw, counter.next(), key.peer_id), data), key,
             network_id=NET, topic="t")
        for _ in range(frames)
    ]
    signed = time.perf_counter()
    for frame in sealed:
        verifier.verify(decode(frame), "t")
    verified = time.perf_counter()
    return {"sign_us": (signed - start) / frames * 1e6,
            "verify_us": (verified - signed) / frames * 1e6}


async def gossip_latency(port: int, messages: int) -> list[float]:
    """Publish -> delivery milliseconds, every (message, other node) pair."""
    nodes = [_transport(port, index) for index in range(3)]
    for node in nodes:
        await node.start()
    try:
        subscriptions = [await node.subscribe("probe") for node in nodes]
        latencies: list[float] = []

        async def drain(own: int) -> None:
            # every node also receives its own messages: those are not counted
            remaining = sum(1 for seq in range(messages) if seq % 3 != own)
            while remaining:
                delivery = await subscriptions[own].get()
                seq, sent = _STAMP.unpack_from(delivery.data)
                if seq % 3 != own:
                    latencies.append((time.perf_counter() - sent) * 1e3)
                    remaining -= 1

        readers = [asyncio.create_task(drain(i)) for i in range(3)]
        for seq in range(messages):
            stamp = _STAMP.pack(seq, time.perf_counter()).ljust(64, b"\0")
            await nodes[seq % 3].publish("probe", stamp)
            await asyncio.sleep(PACE_S)
        async with asyncio.timeout(60):
            await asyncio.gather(*readers)
        return latencies
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def measure(messages: int, brokers: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"messages": messages, "nodes": 3, "payload_bytes": 64}
    for kind in brokers:
        broker: EmbeddedBroker | MosquittoBroker = (
            EmbeddedBroker() if kind == "amqtt" else MosquittoBroker()
        )
        await broker.start()
        try:
            await gossip_latency(broker.port, 30)  # warm-up
            latencies = await gossip_latency(broker.port, messages)
        finally:
            await broker.stop()
        result[kind] = {"p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99),
                        "samples": len(latencies)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--brokers", default="amqtt,mosquitto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(measure(args.messages, args.brokers.split(",")))
    result["frame_cost"] = {size: frame_cost(size, args.frames) for size in (64, 65536)}
    table = Table(title="MQTT frame authentication")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for kind in args.brokers.split(","):
        table.add_row(f"{kind} gossip p50 / p99 ms",
                      f"{result[kind]['p50_ms']:.3f} / {result[kind]['p99_ms']:.3f}")
    for size, cost in result["frame_cost"].items():
        if cost is not None:
            table.add_row(f"{size}-byte frame: sign / verify us",
                          f"{cost['sign_us']:.1f} / {cost['verify_us']:.1f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
