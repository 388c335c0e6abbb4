"""MQTT brokers on loopback: the embedded amqtt broker and a Debian mosquitto process.

The embedded broker runs inside the caller's event loop and needs nothing installed; it lets
anyone connect (no accounts). mosquitto is the real broker for testnets; `MosquittoBroker` finds
the binary (installed by the system's package manager: `make install-dev`, CI and the deploy
files do it, never this code), runs it (on a free loopback port unless told where) with a
generated config, optionally with per-node accounts it can extend while running, and stops it
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import loopback_ports
from adapters.transport.base import TransportError
from adapters.transport.broker_auth import acl_file, auth_config_lines, password_file

_log = logging.getLogger("adapters.transport.mqtt_broker")

LOOPBACK = "127.0.0.1"
_MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
MOSQUITTO_MISSING = (
    "mosquitto is not installed: install it (Debian/Ubuntu: apt-get install -y mosquitto) "
    "or use the embedded broker"
)
_READY_TIMEOUT_S = 10.0


class BrokerUnavailable(TransportError):
    """A broker could not be found or started."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (adapters.loopback_ports)."""
    return loopback_ports.free_loopback_port(LOOPBACK)


async def wait_until_listening(
    port: int, *, limit_s: float = _READY_TIMEOUT_S, host: str = LOOPBACK
) -> None:
    """Poll until something accepts TCP connections on `host`:`port`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise BrokerUnavailable(f"nothing listens on {host}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class EmbeddedBroker:
    """An amqtt broker in this process, listening on `host` (loopback by default)."""

    def __init__(self, port: int | None = None, host: str = LOOPBACK) -> None:
        self._host = host
        self._port = port or free_loopback_port()
        self._broker: Any = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self._host}:{self._port}"

    async def start(self) -> None:
        """Start listening (idempotent)."""
        if self._broker is not None:
            return
        from amqtt.broker import Broker  # heavy import, only when a broker is wanted

        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self._host}:{self._port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await broker.start()
        self._broker = broker

    async def stop(self) -> None:
        """Disconnect every client and close the listener (idempotent)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def find_mosquitto() -> Path | None:
    """The mosquitto binary, if installed."""
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    for candidate in _MOSQUITTO_PATHS:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass(frozen=True)
class BrokerAccounts:
    """Who may log in (user name = peer id -> password) and the network the ACL is for."""

    network_id: str
    credentials: Mapping[str, str]
    root: str = "seedswarm"


class MosquittoBroker:
    """A mosquitto process on `host`:`port` (loopback, a free port by default), with a config
    written for it.

    With `accounts`, anonymous clients are refused and the ACL of
    adapters.transport.broker_auth applies (what a real deployment runs); `add_accounts`
    lets more nodes in while it runs (rewrites the password file, then SIGHUP).
    """

    def __init__(
        self, *, binary: Path | None = None, accounts: BrokerAccounts | None = None,
        host: str = LOOPBACK, port: int | None = None,
    ) -> None:
        self._binary = binary
        self._accounts = accounts
        self._credentials = dict(accounts.credentials) if accounts is not None else {}
        self._host = host
        self._wanted_port = port
        self._port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Locate mosquitto, start it and wait until it accepts connections."""
        if self._process is not None:
            return
        binary = self._binary or find_mosquitto()
        if binary is None:
            raise BrokerUnavailable(MOSQUITTO_MISSING)
        self._workdir = tempfile.TemporaryDirectory(prefix="seedswarm-mosquitto-")
        self._port = self._wanted_port or free_loopback_port()
        workdir = Path(self._workdir.name)
        config = workdir / "mosquitto.conf"
        auth: list[str] = []
        if self._accounts is not None:
            accounts = self._accounts
            passwords, acl = workdir / "passwd", workdir / "acl"
            passwords.write_text(password_file(self._credentials), encoding="utf-8")
            acl.write_text(acl_file(accounts.network_id, accounts.root), encoding="utf-8")
            auth = auth_config_lines(str(passwords), str(acl))
            _readable_by_broker(workdir, passwords, acl)
        config.write_text(_mosquitto_config(self._port, auth, self._host), encoding="utf-8")
        log_path = workdir / "mosquitto.log"
        self._process = _spawn([str(binary), "-c", str(config)], log_path)
        try:
            await wait_until_listening(self._port, host=_reachable(self._host))
        except BrokerUnavailable as exc:
            output = log_path.read_text(encoding="utf-8", errors="replace")[-500:]
            await self.stop()
            raise BrokerUnavailable(f"mosquitto did not start: {exc}; log: {output}") from exc

    def add_accounts(self, credentials: Mapping[str, str], *, limit_s: float = 10.0) -> None:
        """Let these nodes (peer id -> password) log in too: rewrite the password file, send
        mosquitto SIGHUP (it re-reads the file) and return once it accepts their logins.
        Blocking; BrokerUnavailable if mosquitto is not running with accounts."""
        process, workdir = self._process, self._workdir
        if process is None or workdir is None or self._accounts is None:
            raise BrokerUnavailable("add_accounts needs a running mosquitto started with "
                                    "accounts")
        self._credentials.update(credentials)
        passwords = Path(workdir.name) / "passwd"
        fresh = passwords.with_name("passwd.new")
        fresh.write_text(password_file(self._credentials), encoding="utf-8")
        _readable_by_broker(Path(workdir.name), fresh)
        os.replace(fresh, passwords)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + limit_s
        host = _reachable(self._host)
        for user, password in credentials.items():
            while mqtt_login(host, self._port, user, password) != 0:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise BrokerUnavailable(f"mosquitto did not take the account {user} "
                                            f"within {limit_s:g} s")
                time.sleep(0.05)

    async def stop(self) -> None:
        """Terminate the process (kill after a grace period) and remove its files."""
        process, self._process = self._process, None
        if process is not None:
            await asyncio.to_thread(_terminate, process)
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            workdir.cleanup()

    async def __aenter__(self) -> MosquittoBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _readable_by_broker(workdir: Path, *files: Path) -> None:
    """mosquitto started as root drops to the `mosquitto` user before it reads the password
    and ACL files: hand it those two (the directory stays unlistable to others)."""
    if os.geteuid() != 0:
        return
    try:
        for path in files:
            shutil.chown(path, user="mosquitto")
    except (LookupError, PermissionError):  # no such user: mosquitto keeps running as root
        return
    workdir.chmod(0o711)


def _reachable(host: str) -> str:
    """Where this machine reaches a listener bound to `host`."""
    return LOOPBACK if host in ("0.0.0.0", "") else host


def mqtt_login(host: str, port: int, user: str, password: str, *,
               timeout_s: float = 5.0) -> int:
    """Log in to the MQTT broker at `host`:`port` as `user` and disconnect: the CONNACK's
    return code (0: accepted, 4: bad user name or password, 5: not authorized); -1 if the
    broker closed the connection or answered something else."""
    def field(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    payload = (field(f"sw-probe-{secrets.token_hex(8)}".encode()) + field(user.encode())
               + field(password.encode()))
    # MQTT 3.1.1 CONNECT: protocol name and level, flags (user name, password, clean
    # session), keepalive 10 s
    body = field(b"MQTT") + bytes([4, 0xC2]) + (10).to_bytes(2, "big") + payload
    length, encoded = len(body), bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            break
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        conn.sendall(bytes([0x10]) + bytes(encoded) + body)
        answer = b""
        while len(answer) < 4:
            chunk = conn.recv(4 - len(answer))
            if not chunk:
                return -1
            answer += chunk
        if answer[:2] != b"\x20\x02":
            return -1
        if answer[3] == 0:
            conn.sendall(b"\xe0\x00")  # DISCONNECT
        return answer[3]


def _mosquitto_config(port: int, auth: list[str] | None = None,
                      host: str = LOOPBACK) -> str:
    # Queue limits are raised so that a burst to a slow subscriber is held, not dropped, by
    # the broker (mosquitto's default drops QoS 1 messages beyond 1000 queued per client).
    return "\n".join(
        [
            f"listener {port} {host}" if host not in ("0.0.0.0", "") else f"listener {port}",
            *(auth or ["allow_anonymous true"]),
            "persistence false",
            # small QoS 1 exchanges otherwise stall ~40 ms on Nagle + delayed ACK
            "set_tcp_nodelay true",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
