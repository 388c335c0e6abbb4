"""`seedswarm doctor` against a served embedded chain and a listening bootstrap peer: every check
passes for a registered, funded node; each kind of failure is a ✗ line with its fix and exit 1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.chain.backends import chain_time
from adapters.chain.devnode import free_port
from protocol.identity import NodeKey
from seedswarm.launch.join_bundle import PeerInfo
from tests.cli.served_chain import Served, run_cli, serve, write_keys

pytestmark = pytest.mark.chain

Capsys = pytest.CaptureFixture[str]
Patch = pytest.MonkeyPatch


@pytest.fixture(scope="module")
def peer() -> Iterator[socket.socket]:
    """A TCP listener standing in for the bootstrap peer (doctor only connects)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, peer: socket.socket) -> Iterator[Served]:
    port = peer.getsockname()[1]
    bootstrap = f"/ip4/127.0.0.1/tcp/{port}/p2p/{NodeKey.generate().peer_id}"
    served = serve(tmp_path_factory.mktemp("doctor"), ticking=True,
                   peers=PeerInfo("libp2p", bootstrap=(bootstrap,)))
    yield served
    served.server.stop()


def checks(report: dict[str, object]) -> dict[str, tuple[str, str, str]]:
    return {c["name"]: (c["status"], c["detail"], c["fix"])  # type: ignore[index]
            for c in report["checks"]}  # type: ignore[attr-defined]


def test_a_stranger_and_a_busy_port_fail_with_their_fixes(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path
) -> None:
    write_keys(tmp_path / "stranger")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        result = run_cli(capsys, monkeypatch, "doctor", *served.args(
            "--keys", str(tmp_path / "stranger"), "--state-dir", str(tmp_path / "state"),
            "--listen-host", "127.0.0.1", "--listen-port", str(busy.getsockname()[1]),
            "--json"))
    assert result.code == 1
    found = checks(json.loads(result.out))
    assert found["funds"][0] == "fail" and "needs 1.0" in found["funds"][1]
    assert found["registry"][0] == "fail" and "seedswarm join" in found["registry"][2]
    assert found["port"][0] == "fail" and "--listen-port" in found["port"][2]
    assert found["rpc"][0] == "ok" and found["peers"][0] == "ok"

    wrong = run_cli(capsys, monkeypatch, "doctor", *served.args(
        "--keys", str(served.keys_dir), "--state-dir", str(tmp_path)), password="nope")
    assert wrong.code == 1
    line = next(x for x in wrong.out.splitlines() if " keys " in x)
    assert line.startswith("✗") and "wrong password" in line and "SEEDSWARM_PASSWORD" in line


def test_doctor_passes_then_names_the_url_once_the_chain_is_gone(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path
) -> None:
    # Setting up mined a burst of blocks, each stamped a second after the last: the dev chain's
    # clock ran ahead of the wall clock (a real doctor would rightly flag it); let it catch up.
    deadline = time.monotonic() + 60
    while chain_time(served.net.w3) > time.time() + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    args = served.args("--keys", str(served.keys_dir), "--state-dir", str(tmp_path / "state"),
                       "--listen-host", "127.0.0.1", "--listen-port", str(free_port()))
    report = run_cli(capsys, monkeypatch, "doctor", *args, "--json")
    assert report.code == 0, report.out
    found = checks(report.json())
    assert list(found) == ["python", "torch", "disk", "network", "keys", "rpc", "clock",
                           "contracts", "funds", "registry", "peers", "port"]
    assert {name for name, (status, _, _) in found.items() if status != "ok"} == {"registry"}, found
    assert found["registry"][0] == "warn" and "counts from the next epoch" in found["registry"][1]
    assert found["rpc"][1] == f"{served.url} answers, chain id {served.bundle.chain.chain_id}"
    assert "1/1 bootstrap peers reachable" in found["peers"][1]

    text = run_cli(capsys, monkeypatch, "doctor", *args)
    assert text.code == 0 and "all checks passed" in text.out
    assert text.out.count("\n") == len(found) + 1

    served.server.stop()
    down = run_cli(capsys, monkeypatch, "doctor", *args)
    assert down.code == 1 and "Traceback" not in down.out + down.err
    rpc_line = next(x for x in down.out.splitlines() if " rpc " in x)
    assert rpc_line.startswith("✗") and f"cannot reach the chain at {served.url}" in rpc_line
    assert "fix:" in rpc_line
    skipped = [x for x in down.out.splitlines() if x.startswith("-")]
    assert len(skipped) == 4 and all(served.url in x for x in skipped)
