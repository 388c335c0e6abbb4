"""adapters.loopback_ports: pre-picked server ports stay out of the kernel's ephemeral range
(where any outgoing connection can take them before the server binds) and are never handed out
twice."""

from __future__ import annotations

import socket

import pytest

from adapters import loopback_ports as ports


def test_picked_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low, _ = ports.ephemeral_range()
    picked = [ports.free_loopback_port() for _ in range(50)]
    assert len(set(picked)) == 50
    assert all(ports.LOWEST_PORT <= p < low for p in picked)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((ports.LOOPBACK, picked[-1]))


def test_a_port_in_use_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((ports.LOOPBACK, 0))
        busy.listen()
        taken = busy.getsockname()[1]
        # a range of exactly one free-looking candidate besides the busy one is too small for
        # the random pick: the kernel's choice is the fallback, and it is never the busy port
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (ports.LOWEST_PORT + 10, 60999))
        assert ports.free_loopback_port() != taken


def test_the_ephemeral_range_is_read_from_the_kernel() -> None:
    low, high = ports.ephemeral_range()
    assert 1024 <= low < high <= 65535
