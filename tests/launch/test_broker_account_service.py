"""Broker passwords for registered nodes, issued on proof of the node key
(seedswarm.launch.broker_accounts.BrokerAccountService), on a real mosquitto with accounts.

A registered key that signs a fresh request gets a password the running broker accepts at once
(the password file rewritten, mosquitto SIGHUPed); an unregistered key, a signature by another
key and a stale request get none, each with a one-line reason; anonymous clients and wrong
passwords stay refused by the broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.storage.keystore import KeyBundle
from adapters.transport.broker_auth import account_request_bytes, new_secret, node_password
from adapters.transport.mqtt_broker import (
    BrokerAccounts,
    BrokerUnavailable,
    MosquittoBroker,
    mqtt_login,
)
from protocol.domain_types import PublicKey
from protocol.errors import ConfigError
from protocol.identity import NodeKey
from seedswarm.launch.broker_accounts import (
    ACCOUNT_PATH,
    BrokerAccountService,
    request_broker_password,
)
from seedswarm.launch.compose import with_broker_account
from seedswarm.launch.join_bundle import JoinBundle
from seedswarm.launch.node_plan import NodePlan
from seedswarm.launch.settings import NodeSettings
from tests.launch.test_join_bundle import bundle
from tests.transport.harness import seed_for

pytestmark = pytest.mark.network

NET = "testnet-7"  # the network of tests.launch.test_join_bundle.bundle
BAD_LOGIN = 5  # mosquitto 2 answers "not authorized" to unknown users and wrong passwords


def key_of(label: str) -> NodeKey:
    return NodeKey.from_bytes(seed_for(f"broker-account/{label}"))


@pytest.fixture
def service() -> Iterator[tuple[MosquittoBroker, BrokerAccountService, bytes]]:
    secret, seed = new_secret(), key_of("seed")
    accounts = BrokerAccounts(NET, {seed.peer_id: node_password(secret, seed.peer_id)})
    broker = MosquittoBroker(accounts=accounts)
    try:
        asyncio.run(broker.start())
    except BrokerUnavailable as exc:
        pytest.fail(f"this test needs mosquitto: {exc}")
    registered = {key_of("member").public.raw}

    def is_registered(node_key: PublicKey) -> bool:
        return node_key in registered

    issuer = BrokerAccountService(NET, secret, registered=is_registered,
                                  admit=broker.add_accounts).start()
    try:
        yield broker, issuer, secret
    finally:
        issuer.stop()
        asyncio.run(broker.stop())


def test_a_registered_key_gets_a_password_the_running_broker_accepts(
    service: tuple[MosquittoBroker, BrokerAccountService, bytes],
) -> None:
    broker, issuer, secret = service
    member = key_of("member")
    assert mqtt_login("127.0.0.1", broker.port, member.peer_id,
                      node_password(secret, member.peer_id)) == BAD_LOGIN  # not yet
    password = request_broker_password(issuer.url, NET, member)
    assert password == node_password(secret, member.peer_id)
    assert mqtt_login("127.0.0.1", broker.port, member.peer_id, password) == 0
    # asking again gives the same password and changes nothing
    assert request_broker_password(issuer.url, NET, member) == password
    # the broker still refuses anonymous clients and wrong passwords
    assert mqtt_login("127.0.0.1", broker.port, "", "") != 0
    assert mqtt_login("127.0.0.1", broker.port, member.peer_id, "guess") == BAD_LOGIN
    assert mqtt_login("127.0.0.1", broker.port, key_of("seed").peer_id, password) == BAD_LOGIN


def test_an_unregistered_key_gets_no_password_and_a_one_line_reason(
    service: tuple[MosquittoBroker, BrokerAccountService, bytes],
) -> None:
    broker, issuer, secret = service
    stranger = key_of("stranger")
    with pytest.raises(ConfigError) as refused:
        request_broker_password(issuer.url, NET, stranger)
    message = str(refused.value)
    assert "\n" not in message
    assert stranger.peer_id in message and "not registered" in message
    assert "seedswarm join" in message  # the fix
    assert mqtt_login("127.0.0.1", broker.port, stranger.peer_id,
                      node_password(secret, stranger.peer_id)) == BAD_LOGIN


def _post(url: str, body: dict[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(url + ACCOUNT_PATH, data=json.dumps(body).encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_only_the_key_itself_and_only_now_can_ask(
    service: tuple[MosquittoBroker, BrokerAccountService, bytes],
) -> None:
    _, issuer, _ = service
    member, other = key_of("member"), key_of("stranger")
    import time

    now = int(time.time())
    forged = other.sign(account_request_bytes(NET, member.peer_id, now))
    status, answer = _post(issuer.url, {"peer_id": member.peer_id, "issued_at": now,
                                        "signature": forged.hex()})
    assert status == 403 and "signature" in answer and "password" not in json.loads(answer)
    stale = now - 3600
    old = member.sign(account_request_bytes(NET, member.peer_id, stale))
    status, answer = _post(issuer.url, {"peer_id": member.peer_id, "issued_at": stale,
                                        "signature": old.hex()})
    assert status == 403 and "fresh" in answer
    other_net = member.sign(account_request_bytes("another-net", member.peer_id, now))
    status, _ = _post(issuer.url, {"peer_id": member.peer_id, "issued_at": now,
                                   "signature": other_net.hex()})
    assert status == 403
    status, _ = _post(issuer.url, {"peer_id": "not a peer id", "issued_at": now,
                                   "signature": "00"})
    assert status == 400


def test_a_node_started_from_its_settings_gets_its_password_too(
    service: tuple[MosquittoBroker, BrokerAccountService, bytes], tmp_path: Path,
) -> None:
    """`seedswarm miner --config` and restarts: the node asks the service itself unless its
    settings give a password (the operator's, from $SEEDSWARM_BROKER_PASSWORD)."""
    broker, issuer, secret = service
    network = bundle(transport="mqtt", broker=broker.url, accounts=issuer.url)
    path = tmp_path / "network.toml"
    network.save(path)
    assert JoinBundle.load(path) == network  # the service's URL travels in the file
    settings = NodeSettings(role="miner", network=path, keystore=tmp_path, state_dir=tmp_path)
    member = KeyBundle(key_of("member"), bytes(range(1, 33)))
    plan = with_broker_account(NodePlan(settings, network), member)
    assert plan.settings.broker_password == node_password(secret, member.peer_id)
    given = dataclasses.replace(settings, broker_password="handed out")
    assert with_broker_account(NodePlan(given, network), member).settings == given
    stranger = KeyBundle(key_of("stranger"), bytes(range(2, 34)))
    with pytest.raises(ConfigError, match="not registered"):
        with_broker_account(NodePlan(settings, network), stranger)
