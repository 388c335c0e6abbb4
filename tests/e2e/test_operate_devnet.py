"""Operating a devnet as an operator would: its endpoints file, every node's metrics and health,
and the validator's dashboard in a real browser.

`seedswarm devnet --keep-alive --export NET` runs in the background with a noise attacker
beside three honest miners. NET/endpoints.json names every node's metrics and health URLs and
the dashboard; every metrics URL serves Prometheus text whose current round passes 0 after two
rounds; every health URL answers 200. Once the chain has paid an epoch, headless Chromium
(Debian's `chromium`, installed by `make system-deps`) renders the dashboard: its leaderboard
has one row per registered miner (by EVM address, as the Registry lists them) showing exactly
what the chain paid each for the last settled epoch, the loss curve has one point per
certified round, the cheater's row names its refusal reason, and the page's script refreshed
it live. A screenshot is kept in artifacts/ (CI keeps it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from prometheus_client.parser import text_string_to_metric_families

from adapters.chain.backends import connect
from adapters.chain.registry_contract import RegistryClient
from seedswarm.launch.join_bundle import JoinBundle
from tests.e2e.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(900)]

SEEDSWARM = str(Path(sys.executable).parent / "seedswarm")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SEEDSWARM_ARTIFACTS", ROOT / "artifacts"))


def chromium() -> str:
    """The headless browser; a test that needs it fails (never skips) without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, ("chromium is not installed: `make system-deps` installs it "
                   "(apt-get install -y chromium)")
    return found


def browse(url: str, *args: str) -> str:
    """Run headless Chromium on `url` (each call its own profile); its stdout."""
    with tempfile.TemporaryDirectory(prefix="seedswarm-chromium-") as profile:
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=4000",
             *args, url],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return None


class Dashboard(HTMLParser):
    """What the rendered DOM shows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.points: list[int] = []
        self.summary: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.refusal_reasons: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        elif tag == "tr" and a.get("data-address"):
            self.rows[a["data-address"]] = a
        elif tag == "tr" and "data-reason" in a:
            self.refusal_reasons.append(a["data-reason"])
        elif tag == "circle" and "point" in a.get("class", ""):
            self.points.append(int(a["data-round"]))
        elif tag == "section" and a.get("id") == "summary":
            self.summary = a


def registered_miners(bundle: JoinBundle) -> set[str]:
    registry = RegistryClient.read_only(connect(bundle.chain.url), bundle.chain.registry)
    return {to_checksum_address(a) for a in registry.miner_slots() if int(a, 16) != 0}


def paid(network: Path, address: str, epoch: int, env: dict[str, str], cwd: Path) -> int:
    """What the chain paid `address` for `epoch`, as `seedswarm rewards --json` reads it."""
    done = subprocess.run([SEEDSWARM, "rewards", "--network", str(network), "--address",
                           address, "--json"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)["epochs"]
    return sum(int(r["reward_wei"]) for r in rows if r["epoch"] == epoch)


def test_endpoints_metrics_health_and_the_dashboard_in_a_real_browser(tmp_path: Path) -> None:
    chromium()  # before minutes of devnet: fail at once if the browser is missing
    env = dict(os.environ, OMP_NUM_THREADS="1")
    log = tmp_path / "devnet.log"
    work = tmp_path / "work"
    with log.open("wb") as out:
        devnet = subprocess.Popen(
            [SEEDSWARM, "devnet", "--keep-alive", "--export", "NET", "--workdir", str(work),
             "--attackers", "noise=1", "--epoch-length", "2"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _check(tmp_path, work, env, [log])
    finally:
        devnet.send_signal(signal.SIGTERM)
        devnet.wait(timeout=120)


def _check(tmp_path: Path, work: Path, env: dict[str, str], logs: list[Path]) -> None:
    net = tmp_path / "NET"
    wait_for((net / "endpoints.json").exists, 300, "NET/endpoints.json", logs)
    endpoints: dict[str, Any] = json.loads((net / "endpoints.json").read_text())
    nodes = endpoints["nodes"]
    assert sorted(nodes) == ["attacker-noise-0", "miner-0", "miner-1", "miner-2",
                             "validator-0"]
    assert {n["role"] for n in nodes.values()} == {"miner", "validator"}
    assert endpoints["dashboards"] == [nodes["validator-0"]["dashboard"]]

    def past_round_two() -> bool:
        for node in nodes.values():
            status, text = get(node["metrics"])
            current = metric(text, "seedswarm_round") if status == 200 else None
            if current is None or current < 2:
                return False
        return True

    wait_for(past_round_two, 400, "every node's seedswarm_round at 2 or more", logs)
    for name, node in nodes.items():
        status, text = get(node["metrics"])
        assert status == 200 and "seedswarm_" in text, name
        assert (metric(text, "seedswarm_round") or 0) > 0, name
        status, body = get(node["health"])
        assert status == 200 and body.startswith("ok"), (name, status, body)

    dashboard = endpoints["dashboards"][0]

    def epoch_paid() -> bool:
        status, text = get(dashboard + "api/dashboard")
        return status == 200 and json.loads(text)["health"]["last_settled_epoch"] is not None

    wait_for(epoch_paid, 600, "an epoch settled and paid on-chain (the dashboard's view)", logs)
    page = Dashboard()
    page.feed(browse(dashboard, "--dump-dom"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    browse(dashboard, "--hide-scrollbars", "--window-size=1400,2400", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000

    # the script ran in the browser and refreshed the page from the validator
    assert int(page.body["data-refreshes"]) >= 1
    # one row per registered miner, named by its EVM address
    bundle = JoinBundle.load(net / "network.toml")
    registered = registered_miners(bundle)
    assert len(registered) == 4
    assert set(page.rows) == registered
    # ... showing what the chain paid it for the last settled epoch
    epoch = int(page.summary["data-settled-epoch"])
    for address, row in page.rows.items():
        assert int(row["data-reward-wei"]) == paid(net / "network.toml", address, epoch, env,
                                                   tmp_path), address
    assert any(int(row["data-reward-wei"]) > 0 for row in page.rows.values())
    # one point per certified round: rounds 0 .. R-1 for a validator holding round R
    shown_round = int(page.summary["data-round"])
    assert shown_round >= 2
    assert page.points == list(range(shown_round))
    # the cheater's row says why it earned nothing, and the refusal is counted by reason
    cheater = json.loads((work / "keys" / "attacker-noise-0" / "keystore.json").read_text())
    row = page.rows[to_checksum_address(cheater["address"])]
    assert row["data-reason-class"] not in ("", "scored"), row
    assert row["data-reason-class"] in page.refusal_reasons
    assert int(row["data-reward-wei"]) == 0
