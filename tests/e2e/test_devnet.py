"""Whole networks of OS processes on loopback: libp2p and MQTT (mosquitto), settled on-chain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from adapters.transport.mqtt_broker import BrokerUnavailable, MosquittoBroker
from seedswarm.devnet.local_network import run_devnet
from seedswarm.devnet.spec import DevnetSpec

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

ROUNDS = 5


def _check_run(result: dict[str, object]) -> None:
    hashes = result["final_model_hashes"]
    rounds = result["final_rounds"]
    rewards = result["rewards"]
    assert isinstance(hashes, dict) and isinstance(rounds, dict) and isinstance(rewards, dict)
    assert set(rounds.values()) == {ROUNDS}, rounds
    assert len(set(hashes.values())) == 1, hashes
    assert len(rewards) == 3
    assert all(amount > 0 for amount in rewards.values()), rewards
    losses = result["val_loss"]
    assert isinstance(losses, list) and len(losses) == ROUNDS
    assert losses[-1] < losses[0]


def test_three_miners_one_validator_over_libp2p(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS, transport="libp2p", chain="anvil",
                      workdir=tmp_path, startup_s=12)
    result = asyncio.run(run_devnet(spec))
    assert result["transport"] == "libp2p"
    _check_run(result)


def test_three_miners_one_validator_over_mqtt_with_mosquitto(tmp_path: Path) -> None:
    try:
        asyncio.run(_ensure_mosquitto())
    except BrokerUnavailable as exc:
        pytest.fail(f"this test needs mosquitto: {exc}")
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS, transport="mqtt",
                      broker="mosquitto", chain="embedded", workdir=tmp_path, startup_s=12)
    started: list[dict[str, object]] = []
    result = asyncio.run(run_devnet(spec, export=tmp_path / "NET", on_start=started.append))
    assert (result["transport"], result["broker"], result["chain"]) == (
        "mqtt", "mosquitto", "embedded")
    _check_run(result)
    # a finite run exports too: the network file and every node's endpoints
    assert (tmp_path / "NET" / "network.toml").exists()
    endpoints = json.loads((tmp_path / "NET" / "endpoints.json").read_text())
    assert endpoints["nodes"] == result["endpoints"]["nodes"]  # type: ignore[index]
    assert sorted(endpoints["nodes"]) == sorted(result["nodes"])  # type: ignore[arg-type]
    ports = {url.split("/")[2] for node in endpoints["nodes"].values()
             for key, url in node.items() if key != "role"}
    assert len(ports) == 4 + 1  # a metrics port per node, a dashboard port for the validator
    assert endpoints["dashboards"] == [endpoints["nodes"]["validator-0"]["dashboard"]]
    assert started and started[0]["export"] == str(tmp_path / "NET" / "network.toml")


async def _ensure_mosquitto() -> None:
    """Install mosquitto if missing (as the transport tests do), so the devnet can start it."""
    broker = MosquittoBroker()
    await broker.start()
    await broker.stop()
