"""Fixtures: one harness factory per transport implementation, and a shared mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

import pytest

from adapters.transport.base import Limits
from adapters.transport.mqtt_broker import BrokerUnavailable, MosquittoBroker
from tests.transport.harness import Harness, Libp2pHarness, MemoryHarness, MqttHarness

HarnessFactory = Callable[..., Harness]

IMPLEMENTATIONS = [
    pytest.param("memory", id="memory"),
    pytest.param("libp2p", id="libp2p", marks=pytest.mark.network),
    pytest.param("mqtt-amqtt", id="mqtt-amqtt", marks=pytest.mark.network),
    pytest.param("mqtt-mosquitto", id="mqtt-mosquitto", marks=pytest.mark.network),
]


@pytest.fixture(scope="session")
def mosquitto_port() -> Iterator[int]:
    """One mosquitto for the session: installed if missing (as root), on a free loopback port."""
    broker = MosquittoBroker()
    try:
        asyncio.run(broker.start())
    except BrokerUnavailable as exc:
        pytest.fail(f"the mosquitto tests need a mosquitto broker: {exc}")
    try:
        yield broker.port
    finally:
        asyncio.run(broker.stop())


@pytest.fixture(params=IMPLEMENTATIONS)
def make_harness(request: pytest.FixtureRequest) -> HarnessFactory:
    """`make_harness(size=3, limits=None)` builds a swarm of the parametrized implementation."""
    kind: str = request.param
    port = request.getfixturevalue("mosquitto_port") if kind == "mqtt-mosquitto" else None

    def factory(size: int = 3, limits: Sequence[Limits] | None = None) -> Harness:
        if kind == "memory":
            return MemoryHarness(size, limits)
        if kind == "libp2p":
            return Libp2pHarness(size, limits)
        return MqttHarness(size, limits, broker_port=port)

    return factory
