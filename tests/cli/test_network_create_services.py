"""`seedswarm network create` on services that already run, as deploy/compose.yaml uses it: a
dev chain reached by URL (`--dev`: deploy from a funded throwaway account, serve a faucet) and
an MQTT broker reached by URL (not started here; the genesis seed connects to it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.chain.backends import connect
from adapters.chain.embedded_rpc import EmbeddedRpcServer
from adapters.transport.mqtt_broker import EmbeddedBroker
from seedswarm.launch.join_bundle import JoinBundle
from tests.e2e.waiting import wait_for

pytestmark = [pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(300)]

SEEDSWARM = str(Path(sys.executable).parent / "seedswarm")


@pytest.fixture
def broker() -> Iterator[int]:
    """An MQTT broker on its own loop and thread, as another host's would be."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, EmbeddedBroker] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["broker"] = EmbeddedBroker()
        loop.run_until_complete(box["broker"].start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60), "the broker did not start"
    try:
        yield box["broker"].port
    finally:
        asyncio.run_coroutine_threadsafe(box["broker"].stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_create_on_a_dev_chain_url_and_a_running_broker(tmp_path: Path, broker: int) -> None:
    server = EmbeddedRpcServer(connect("embedded")).start()
    log = tmp_path / "create.log"
    url = f"mqtt://127.0.0.1:{broker}"
    try:
        with log.open("wb") as out:
            create = subprocess.Popen(
                [SEEDSWARM, "network", "create", "--chain", server.url, "--dev",
                 "--transport", "mqtt", "--broker", url, "--out", "NET",
                 "--round-length", "10"],
                cwd=tmp_path, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for((tmp_path / "NET" / "network.toml").exists, 240, "NET/network.toml", [log])
            bundle = JoinBundle.load(tmp_path / "NET" / "network.toml")
            assert bundle.peers.broker == url  # the broker joiners reach, not one started here
            assert len(bundle.peers.seeds) == 1
            assert bundle.chain.url == server.url
            assert bundle.chain.faucet.startswith("http://127.0.0.1:")
            assert create.poll() is None  # it stays up: it serves the seed and the faucet
        finally:
            create.send_signal(signal.SIGTERM)
            create.wait(timeout=60)
    finally:
        server.stop()


def test_a_url_chain_without_keys_or_dev_is_one_line(tmp_path: Path) -> None:
    server = EmbeddedRpcServer(connect("embedded")).start()
    try:
        done = subprocess.run([SEEDSWARM, "network", "create", "--chain", server.url,
                               "--out", "NET"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=240, check=False)
    finally:
        server.stop()
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--keys DIR" in errors[0] and "--dev" in errors[0], done.stderr
