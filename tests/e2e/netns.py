"""Several hosts on one machine: Linux network namespaces joined by veth pairs to a bridge.

Each host is a namespace with its own address on 10.77.<net>.0/24 and its own loopback; the
bridge lives in a hub namespace of its own, so the machine's own network is never touched.
Everything is created by `Hosts` and removed when it exits (tests run as root here). A host's
link can be cut and restored, as a pulled cable would.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def available() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"ssprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot create a network namespace: {exc.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class Host:
    """One namespace: its name and address."""

    netns: str
    address: str
    link: str
    """Its end of the veth pair (inside the namespace)."""

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        """Pull the cable: the host keeps running, unreachable."""
        _ip("link", "set", self.link, "down", netns=self.netns)

    def restore(self) -> None:
        _ip("link", "set", self.link, "up", netns=self.netns)


@dataclass
class Hosts:
    """`names` hosts on one bridged subnet (see the module docstring)."""

    names: Sequence[str]
    net: int = 77
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    def __enter__(self) -> Hosts:
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for netns in reversed(self._made):  # deleting a namespace deletes its links
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", netns)
        self._made.clear()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _build(self) -> None:
        hub = f"sshub{self.tag}"
        self._netns(hub)
        _ip("link", "add", "br0", "type", "bridge", netns=hub)
        _ip("link", "set", "br0", "up", netns=hub)
        for index, name in enumerate(self.names, start=1):
            netns = f"ss{name}{self.tag}"[:15]
            self._netns(netns)
            inner, outer = f"e{index}{self.tag}", f"h{index}{self.tag}"
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", netns)
            _ip("link", "set", outer, "netns", hub)
            _ip("link", "set", outer, "master", "br0", netns=hub)
            _ip("link", "set", outer, "up", netns=hub)
            address = f"10.{self.net}.0.{index}"
            _ip("addr", "add", f"{address}/24", "dev", inner, netns=netns)
            _ip("link", "set", inner, "up", netns=netns)
            self.hosts[name] = Host(netns, address, inner)

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("link", "set", "lo", "up", netns=name)


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; all killed (and reaped) on exit, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start(host: Host, argv: Sequence[str], log: Path, env: dict[str, str],
          started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Run `argv` on `host` in the background, its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(host.command(argv), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
    started.append(process)
    return process
