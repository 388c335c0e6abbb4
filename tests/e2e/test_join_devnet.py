"""A newcomer joins a running devnet with the commands a user types, nothing else.

From an empty directory: `seedswarm devnet --keep-alive --export NET` in the background until
NET/network.toml exists; `seedswarm keys new`; `seedswarm join ... --faucet` in the background;
after an epoch `seedswarm rewards --json` shows a positive total and `seedswarm claim --json`
pays it; `seedswarm doctor` passes while the network is up and fails, naming the RPC URL, once
the devnet is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(900)]

SEEDSWARM = str(Path(sys.executable).parent / "seedswarm")




def _json(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_a_newcomer_joins_earns_claims_and_checks_from_the_command_line(tmp_path: Path) -> None:
    env = dict(os.environ, SEEDSWARM_PASSWORD="a newcomer's password", OMP_NUM_THREADS="1")
    devnet_log, join_log = tmp_path / "devnet.log", tmp_path / "join.log"
    with devnet_log.open("wb") as out:
        devnet = subprocess.Popen([SEEDSWARM, "devnet", "--keep-alive", "--export", "NET"],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    joiner: subprocess.Popen[bytes] | None = None
    try:
        bundle = tmp_path / "NET" / "network.toml"
        wait_for(bundle.exists, 300, "NET/network.toml", [devnet_log])
        subprocess.run([SEEDSWARM, "keys", "new", "--out", "K"], cwd=tmp_path, env=env,
                       check=True, capture_output=True, timeout=120)
        with join_log.open("wb") as out:
            joiner = subprocess.Popen(
                [SEEDSWARM, "join", "--network", "NET/network.toml", "--role", "miner",
                 "--keys", "K", "--faucet"],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        mine = ["--network", "NET/network.toml", "--keys", "K", "--json"]
        logs = [devnet_log, join_log]

        def earned() -> bool:
            return float(_json([SEEDSWARM, "rewards", *mine], tmp_path, env)["total"]) > 0

        wait_for(earned, 600, "the newcomer's rewards", logs)
        assert float(_json([SEEDSWARM, "claim", *mine], tmp_path, env)["claimed"]) > 0
        doctor = [SEEDSWARM, "doctor", "--network", "NET/network.toml", "--keys", "K"]
        up = subprocess.run(doctor, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
    finally:
        for process in (joiner, devnet):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (joiner, devnet):
            if process is not None:
                process.wait(timeout=120)
    rpc = _chain_url(tmp_path / "NET" / "network.toml")
    down = subprocess.run(doctor, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert down.returncode != 0
    assert rpc in down.stdout + down.stderr


def _chain_url(bundle: Path) -> str:
    import tomllib

    return str(tomllib.loads(bundle.read_text(encoding="utf-8"))["chain"]["url"])
