"""Picking a loopback TCP port for a server that binds it a moment later.

``bind(port 0)`` hands out a port from the kernel's ephemeral range, the range it also draws
the source ports of outgoing connections from: between the pick and the bind, any process's
outgoing connection can take it (CI saw a devnet validator's dashboard port taken that way:
"address already in use"). Ports are therefore picked at random below the ephemeral range,
checked free by binding, and never handed out twice by one process; the kernel's own choice is
the fallback when that range is too small.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOWEST_PORT = 20_000
_EPHEMERAL_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_TRIES = 200
_given: set[int] = set()
_lock = threading.Lock()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports (Linux; a default elsewhere)."""
    try:
        low, high = (int(x) for x in _EPHEMERAL_FILE.read_text().split()[:2])
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_loopback_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that was free a moment ago, outside the ephemeral range."""
    low, _ = ephemeral_range()
    top = low - 1
    if top - LOWEST_PORT >= 1000:
        rng = random.SystemRandom()
        for _ in range(_TRIES):
            port = rng.randint(LOWEST_PORT, top)
            with _lock:
                if port in _given:
                    continue
            if _bindable(host, port):
                with _lock:
                    _given.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
