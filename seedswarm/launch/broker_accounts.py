"""The operator's side of a deployment's mosquitto accounts (adapters.transport.broker_auth).

`write_broker_accounts` keeps one broker secret (created once, mode 0600), derives the
password of every node it is told about from it, and writes mosquitto's password file and ACL
for the network; `seedswarm network broker-accounts` runs it. Re-run it with the new peer id
whenever a node registers, then send mosquitto SIGHUP: it re-reads both files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from adapters.transport.broker_auth import (
    SECRET_BYTES,
    acl_file,
    new_secret,
    node_password,
    password_file,
)
from protocol.errors import ConfigError
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
