"""An MQTT network on mosquitto with accounts, created and joined with the CLI alone.

`seedswarm network create --transport mqtt --broker mosquitto` keeps its broker secret in
OUT/broker/secret (0600) and runs mosquitto admitting only accounts; `seedswarm join` (a
validator, a miner: real processes) registers, gets its broker password from the network's
account service by proving its node key, and takes part: the miner's contributions are certified
and both nodes end on one model. The broker refuses anonymous clients and wrong passwords; a key
registered on no chain is refused a password, with its reason on one line.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.transport.broker_auth import node_password
from adapters.transport.mqtt_broker import mqtt_login
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from seedswarm.launch.broker_accounts import request_broker_password
from seedswarm.launch.join_bundle import JoinBundle
from tests.e2e.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

SEEDSWARM = str(Path(sys.executable).parent / "seedswarm")
ROUND_S = 6
STARTUP_S = 45


def _status(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def test_joiners_get_broker_accounts_from_network_create_and_take_part(tmp_path: Path) -> None:
    env = dict(os.environ, SEEDSWARM_PASSWORD="broker accounts", OMP_NUM_THREADS="1")
    env.pop("SEEDSWARM_BROKER_PASSWORD", None)
    create_log = tmp_path / "create.log"
    processes: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out,
                                       stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    try:
        start([SEEDSWARM, "network", "create", "--chain", "embedded", "--transport", "mqtt",
               "--broker", "mosquitto", "--out", "NET", "--round-length", str(ROUND_S),
               "--epoch-length", "3", "--startup", str(STARTUP_S), "--max-validators", "2"],
              create_log)
        network = tmp_path / "NET" / "network.toml"
        wait_for(network.exists, 240, "NET/network.toml", [create_log])
        secret = tmp_path / "NET" / "broker" / "secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        bundle = JoinBundle.load(network)
        assert bundle.peers.accounts.startswith("http://127.0.0.1:")
        seed_password = node_password(secret.read_bytes(), bundle.peers.seeds[0])
        assert seed_password not in network.read_text(encoding="utf-8")
        assert mqtt_login(*bundle.peers.broker_host_port, bundle.peers.seeds[0],
                          seed_password) == 0  # the operator's own node has its account
        host, port = bundle.peers.broker_host_port

        # no account, no connection; a guessed password neither
        assert mqtt_login(host, port, "", "") != 0
        assert mqtt_login(host, port, NodeKey.generate().peer_id, "guess") != 0
        # a key the chain does not know gets no password
        with pytest.raises(ConfigError) as refused:
            request_broker_password(bundle.peers.accounts, bundle.network.network_id,
                                    NodeKey.generate())
        assert "not registered" in str(refused.value) and "\n" not in str(refused.value)

        logs = [create_log]
        statuses = {}
        for name, role in (("v", "validator"), ("m", "miner")):
            log = tmp_path / f"{name}.log"
            logs.append(log)
            statuses[name] = tmp_path / name / "state" / "status.json"
            start([SEEDSWARM, "join", "--network", "NET/network.toml", "--role", role,
                   "--keys", f"{name}/keys", "--state-dir", f"{name}/state", "--faucet"], log)

        def took_part() -> bool:
            v, m = (_status(statuses[n]) for n in ("v", "m"))
            return (int(m.get("published", 0)) >= 1 and int(m.get("round", -1)) >= 2
                    and v.get("model_hash") == m.get("model_hash")
                    and int(v.get("round", -1)) >= 2)

        wait_for(took_part, STARTUP_S + 40 * ROUND_S, "both joiners certifying rounds", logs)
        for name in ("v", "m"):
            assert "broker account:" in (tmp_path / f"{name}.log").read_text(errors="replace")
        miner_id = _status(statuses["m"])["peer_id"]
        assert mqtt_login(host, port, miner_id, "guess") != 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
