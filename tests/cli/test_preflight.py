"""The doctor's checks that need no chain: disk, torch's pin, peers over TCP, the listen port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from adapters.chain.devnode import free_port
from seedswarm.commands import preflight
from seedswarm.commands.preflight import check_disk, check_peers, check_port, check_torch
from tests.launch.test_join_bundle import bundle as sample_bundle


def test_disk_is_measured_on_the_nearest_existing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "yet"
    assert check_disk(missing, min_free_gb=0.001).status == "ok"
    short = check_disk(missing, min_free_gb=10**9)
    assert short.status == "fail" and "--state-dir" in short.fix


def test_torch_must_be_the_pinned_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert check_torch().status == "ok"
    monkeypatch.setattr(preflight, "_pinned", lambda package: "0.0.1")
    wrong = check_torch()
    assert wrong.status == "fail" and torch.__version__ in wrong.detail
    assert "pip install torch==0.0.1" in wrong.fix


def test_the_broker_or_a_bootstrap_peer_must_accept_a_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        mqtt = sample_bundle(transport="mqtt", bootstrap=(), broker=f"mqtt://127.0.0.1:{port}")
        assert check_peers(mqtt, timeout_s=1).status == "ok"
        up = f"/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWabc"
        down = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/12D3KooWdef"
        partly = check_peers(sample_bundle(bootstrap=(up, down)), timeout_s=1)
        assert partly.status == "warn" and partly.detail.startswith("1/2") and down in partly.detail
    gone = check_peers(mqtt, timeout_s=1)
    assert gone.status == "fail" and f"127.0.0.1:{port}" in gone.detail
    assert check_peers(sample_bundle(bootstrap=(down,)), timeout_s=1).status == "fail"
    assert check_peers(sample_bundle(bootstrap=()), timeout_s=1).status == "warn"


def test_a_port_in_use_is_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = check_port("127.0.0.1", busy.getsockname()[1])
    assert taken.status == "fail" and "--listen-port" in taken.fix
    assert check_port("127.0.0.1", free_port()).status == "ok"


def test_the_peer_timeout_follows_the_round_length() -> None:
    assert preflight.connect_timeout_s(1.0) == 0.5
    assert preflight.connect_timeout_s(20.0) == 2.0
    assert preflight.connect_timeout_s(600.0) == 3.0
