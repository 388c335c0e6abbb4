"""The operator's side of a deployment's mosquitto accounts (adapters.transport.broker_auth).

`write_broker_accounts` keeps one broker secret (created once, mode 0600), derives the
password of every node it is told about from it, and writes mosquitto's password file and ACL
for the network; `seedswarm network broker-accounts` runs it. Re-run it with the new peer id
whenever a node registers, then send mosquitto SIGHUP: it re-reads both files.

`seedswarm network create --broker mosquitto` does all of that itself: `BrokerAccountService`
hands each registered node its password when the node proves its key (`seedswarm join` asks it
with `request_broker_password`), after adding the account to the running broker.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.json_post_server import JsonPostServer
from adapters.transport.broker_auth import (
    ACCOUNT_REQUEST_MAX_AGE_S,
    SECRET_BYTES,
    account_request_bytes,
    acl_file,
    new_secret,
    node_password,
    password_file,
)
from protocol.domain_types import PublicKey
from protocol.errors import ConfigError
from protocol.identity import NodeKey, NodePublicKey
from seedswarm.launch.join_bundle import JoinBundle

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"


def broker_secret(path: Path) -> bytes:
    """The secret at `path`, created (readable by its owner only) if there is none yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(new_secret())
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ConfigError(f"{path}: a broker secret has at least {SECRET_BYTES} bytes")
    return secret


def write_broker_accounts(
    network_file: Path, secret_path: Path, peer_ids: Sequence[str], out: Path
) -> dict[str, str]:
    """Write `out/passwd` and `out/acl` for the network of `network_file`; returns each
    node's password (peer id -> password), to hand to that node only."""
    if not peer_ids:
        raise ConfigError("name at least one node (--peer-id) that may use the broker")
    network_id = JoinBundle.load(network_file).network.network_id
    secret = broker_secret(secret_path)
    try:
        passwords = {peer: node_password(secret, peer) for peer in peer_ids}
    except ValueError as exc:
        raise ConfigError(f"--peer-id: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    (out / PASSWORD_FILE).write_text(password_file(passwords), encoding="utf-8")
    (out / PASSWORD_FILE).chmod(0o640)
    (out / ACL_FILE).write_text(acl_file(network_id), encoding="utf-8")
    return passwords


ACCOUNT_PATH = "/broker-account"
_NOT_REGISTERED = ("not registered on the network's chain: register it first (`seedswarm join` "
                   "does), then ask again")


class BrokerAccountService:
    """Issues broker passwords to the network's registered nodes, over HTTP.

    POST /broker-account {"peer_id": …, "issued_at": unix seconds, "signature": hex} with the
    node key's signature of `account_request_bytes`: the password goes to a key that proves it
    is the node (the signature, fresh within `ACCOUNT_REQUEST_MAX_AGE_S`) and that the chain's
    Registry binds to an account now (`registered`); the broker learns the account first
    (`admit`: rewrite its password file, SIGHUP), so the answer is usable at once. 403 with the
    reason otherwise, 400 for a malformed request.

    The rule is registration on chain, on dev networks too: that is the step `seedswarm join`
    takes right before it runs the node, and it costs a stake, whereas a dev faucet's funds
    are free (an account per faucet call would again make keys cost nothing).
    """

    def __init__(self, network_id: str, secret: bytes, *,
                 registered: Callable[[PublicKey], bool],
                 admit: Callable[[Mapping[str, str]], None],
                 host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.network_id = network_id
        self._secret = secret
        self._registered = registered
        self._admit = admit
        self._clock = clock
        self._admitted: set[str] = set()
        self._lock = threading.Lock()
        self._http = JsonPostServer(ACCOUNT_PATH, self.issue, name="broker-accounts",
                                    bad_request="expected a JSON object",
                                    failure="cannot issue now", host=host, port=port)

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> BrokerAccountService:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def issue(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one password request."""
        try:
            peer_id = str(body["peer_id"])
            issued_at = int(body["issued_at"])
            signature = bytes.fromhex(str(body["signature"]))
            public = NodePublicKey.from_peer_id(peer_id)
        except (KeyError, TypeError, ValueError):
            return 400, {"error": "expected JSON {\"peer_id\", \"issued_at\", \"signature\"} "
                                  "signed by the node key"}
        if abs(self._clock() - issued_at) > ACCOUNT_REQUEST_MAX_AGE_S:
            return 403, {"error": f"the request was signed at {issued_at}, more than "
                                  f"{ACCOUNT_REQUEST_MAX_AGE_S} s from the issuer's clock: "
                                  "sign a fresh one (and check this machine's clock)"}
        signed = account_request_bytes(self.network_id, peer_id, issued_at)
        if not public.verify(signature, signed):
            return 403, {"error": f"the signature is not {peer_id}'s over a request for "
                                  f"network {self.network_id}: sign it with that node key"}
        if not self._registered(public.raw):
            return 403, {"error": f"{peer_id} is {_NOT_REGISTERED}"}
        password = node_password(self._secret, peer_id)
        with self._lock:
            if peer_id not in self._admitted:
                self._admit({peer_id: password})
                self._admitted.add(peer_id)
        return 200, {"user": peer_id, "password": password}


def registered_on_chain(rpc_url: str, registry: str) -> Callable[[PublicKey], bool]:
    """Whether the network's Registry binds a node key to an account now (any role, active
    or waiting for its first epoch: a node follows the network from registration on)."""
    from adapters.chain.backends import connect
    from adapters.chain.registry_contract import RegistryClient

    def check(node_key: PublicKey) -> bool:
        client = RegistryClient.read_only(connect(rpc_url), registry)
        return int(client.account_of_node_key(node_key), 16) != 0

    return check


def request_broker_password(url: str, network_id: str, key: NodeKey, *,
                            timeout_s: float = 30.0) -> str:
    """Ask the network's broker account service at `url` for `key`'s broker password;
    ConfigError with the cause and the fix when it refuses or cannot be reached."""
    issued_at = int(time.time())
    body = {"peer_id": key.peer_id, "issued_at": issued_at,
            "signature": key.sign(account_request_bytes(network_id, key.peer_id,
                                                        issued_at)).hex()}
    request = urllib.request.Request(
        url.rstrip("/") + ACCOUNT_PATH, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return str(json.loads(response.read())["password"])
    except urllib.error.HTTPError as exc:
        try:
            detail = str(json.loads(exc.read())["error"])
        except (ValueError, KeyError, TypeError):
            detail = f"HTTP {exc.code}"
        raise ConfigError(f"the broker account service at {url} gives {key.peer_id} no "
                          f"password: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot get a broker password from {url} ({exc}): is the "
                          "network's operator still running it? Or set "
                          "$SEEDSWARM_BROKER_PASSWORD to a password the operator gave you"
                          ) from exc
