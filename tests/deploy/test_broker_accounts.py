"""The broker a deployment runs (deploy/mosquitto/mosquitto-accounts.conf), checked statically:
`seedswarm network broker-accounts` writes the files the config names, one `$7$` account per
node, a secret kept private and reused, and an ACL that grants exactly the topics the MQTT
transport really uses (tests/transport/test_broker_auth.py runs it on a real mosquitto)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from paho.mqtt.client import topic_matches_sub
from typer.testing import CliRunner

from adapters.transport.mqtt import MqttConfig, MqttTransport
from protocol.identity import NodeKey
from seedswarm.cli import app
from tests.launch.test_join_bundle import bundle

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KEYS = [NodeKey.from_bytes(bytes([140 + i]) * 32) for i in range(3)]


def conf(path: Path) -> dict[str, str]:
    lines = [line.split(None, 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return {key: value for key, value in lines}


def allowed(acl: str, user: str, access: str, topic: str) -> bool:
    """mosquitto's rule for `pattern` lines: %u is the user name; read/write/readwrite."""
    for line in acl.splitlines():
        if not line.startswith("pattern "):
            continue
        _, mode, pattern = line.split(None, 2)
        if access in mode and topic_matches_sub(pattern.replace("%u", user), topic):
            return True
    return False


def test_the_deployment_broker_refuses_anonymous_clients_and_names_the_generated_files() -> None:
    settings = conf(DEPLOY / "mosquitto" / "mosquitto-accounts.conf")
    assert settings["allow_anonymous"] == "false"
    assert settings["password_file"] == "/mosquitto/accounts/passwd"
    assert settings["acl_file"] == "/mosquitto/accounts/acl"


def test_broker_accounts_writes_one_account_per_node_and_an_acl_the_transport_fits(
    tmp_path: Path,
) -> None:
    network = tmp_path / "network.toml"
    bundle().save(network)
    secret, out = tmp_path / "broker.secret", tmp_path / "accounts"
    args = ["network", "broker-accounts", "--network", str(network), "--secret", str(secret),
            "--out", str(out), "--json"]
    for key in KEYS:
        args += ["--peer-id", key.peer_id]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    passwords = json.loads(result.output)["passwords"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    lines = (out / "passwd").read_text().splitlines()
    assert sorted(line.split(":", 1)[0] for line in lines) == sorted(k.peer_id for k in KEYS)
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in lines)
    again = CliRunner().invoke(app, args)  # the secret is reused: the same passwords
    assert json.loads(again.output)["passwords"] == passwords

    acl = (out / "acl").read_text()
    network_id = bundle().network.network_id
    me, other = KEYS[0], KEYS[1]
    node = MqttTransport(MqttConfig(), key=me, network_id=network_id)
    gossip, mine, theirs = node._topic("contributions"), node._inbox(me.peer_id), node._inbox(
        other.peer_id)
    assert allowed(acl, me.peer_id, "read", gossip) and allowed(acl, me.peer_id, "write", gossip)
    assert allowed(acl, me.peer_id, "read", mine)
    assert allowed(acl, me.peer_id, "write", theirs)  # requests and answers go to others
    assert not allowed(acl, me.peer_id, "read", theirs)
    assert not allowed(acl, me.peer_id, "write", gossip.replace(network_id, "other-net"))
    assert not allowed(acl, me.peer_id, "read", "#")


def test_broker_accounts_refuses_a_bad_peer_id_with_its_reason(tmp_path: Path) -> None:
    network = tmp_path / "network.toml"
    bundle().save(network)
    base = ["network", "broker-accounts", "--network", str(network), "--secret",
            str(tmp_path / "s"), "--out", str(tmp_path / "o")]
    bad = CliRunner().invoke(app, [*base, "--peer-id", "a/b#"])
    assert bad.exit_code != 0 and "peer id" in bad.output
    assert not (tmp_path / "o" / "passwd").exists()
