"""A node's HTTP side on a live in-process network: a validator, two honest miners and a noise
attacker over the in-memory transport. While it runs, each node's /healthz, /readyz and
/metrics are asked over real HTTP; once it is stopped, the metrics, the dashboard's data and
its HTML are checked value by value against the services' own books."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.storage.keystore import KeyBundle
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.errors import ConfigError
from protocol.netconfig import NetworkConfig
from runtime.http_server import HttpRequest, HttpResponse, HttpServer
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import live_miner
from seedswarm.devnet.devnet_genesis import network_config, write_base
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.dashboard import dashboard_data
from seedswarm.launch.dashboard_page import render_page
from seedswarm.launch.node_http import NodePages
from seedswarm.launch.node_metrics import METRICS, NodeCollector, registry
from seedswarm.launch.settings import NodeSettings
from tests.services.harness import key as _key
from tests.services.harness import run_until, transports
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

ROUNDS = 3
HONEST = [_key("pages-honest-0"), _key("pages-honest-1")]
ATTACKER = _key("pages-noise-0")
LEADER = _key("pages-validator")
MINERS = [(k, "") for k in HONEST] + [(ATTACKER, "noise")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pages(network: NetworkConfig, role: str, metrics: int, dashboard: int = 0) -> NodePages:
    settings = NodeSettings(role=role, network=Path("n.toml"), keystore=Path("k"),
                            state_dir=Path("s"), metrics_port=metrics, dashboard_port=dashboard)
    plan = SimpleNamespace(settings=settings, network=network)
    return NodePages(plan, KeyBundle.generate())  # type: ignore[arg-type]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def _run(network: NetworkConfig, base: Path, tmp: Path, seen: dict[str, Any]
               ) -> tuple[ValidatorService, list[MinerService]]:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    keys = tuple(k.public.raw for k, _ in MINERS)
    common = {"network": network, "genesis_time": time.time() + 2.0,
              "peers": (LEADER.peer_id,)}
    certifier = scoring_certifier(network, LEADER, tmp / "v")
    vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, 1),),
                              miners=keys, **common)  # type: ignore[arg-type]
    validator = ValidatorService(vconfig, LEADER, transport(LEADER), ScoringEngine(
        ModelState.from_base(network, base), certifier, keys, work))
    miners = []
    for i, (key, attack) in enumerate(MINERS):
        config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, 1),),
                             **common)  # type: ignore[arg-type]
        produce = MinerProduce(live_miner(attack, key, work), keys, work)
        miners.append(MinerService(config, transport(key), ModelState.from_base(network, base),
                                   produce))
    vport, mport = _free_port(), _free_port()
    vpages = _pages(network, "validator", vport, vport)
    mpages = _pages(network, "miner", mport)

    async def probe() -> None:
        async with vpages.serving(), mpages.serving():
            seen["starting"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{vport}/readyz")
            seen["starting_health"] = await asyncio.to_thread(
                _get, f"http://127.0.0.1:{vport}/healthz")
            vpages.attach(validator)
            mpages.attach(miners[0])
            # a few rounds, an honest miner and the attacker scored (a loaded machine may
            # make an honest miner late for a round or two)
            noise = ATTACKER.public.raw.hex()
            while not (all(s.follower.replica.round_index >= ROUNDS  # noqa: ASYNC110
                           for s in (validator, miners[0]))
                       and noise in validator.scoreboard.receipts
                       and len(validator.scoreboard.receipts) >= 2):
                await asyncio.sleep(0.1)
            for name, port in (("validator", vport), ("miner", mport)):
                for path in ("/healthz", "/readyz", "/metrics"):
                    seen[name + path] = await asyncio.to_thread(
                        _get, f"http://127.0.0.1:{port}{path}")
                for _ in range(5):  # not while a round is being applied (then: unknown)
                    if "seedswarm_model_hash_agreement " in seen[name + "/metrics"][1]:
                        break
                    await asyncio.sleep(0.2)
                    seen[name + "/metrics"] = await asyncio.to_thread(
                        _get, f"http://127.0.0.1:{port}/metrics")
            seen["page"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{vport}/")
            seen["part"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{vport}/?part=main")
            seen["js"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{vport}/dashboard.js")
            seen["miner/"] = await asyncio.to_thread(_get, f"http://127.0.0.1:{mport}/")
            seen["done"] = True
            await asyncio.Event().wait()  # serve until the run ends

    services: list[MinerService | ValidatorService] = [validator, *miners]
    await run_until(services, lambda: "done" in seen, limit_s=150, extra=[probe()])
    return validator, miners


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("pages")
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS, round_length=3)
    base = tmp / "base.safetensors"
    network = network_config(spec, write_base(spec, base)[0])
    seen: dict[str, Any] = {}
    validator, miners = asyncio.run(_run(network, base, tmp, seen))
    return {"validator": validator, "miners": miners, "seen": seen, "network": network}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_probes_answer_while_starting_and_once_running(live: dict[str, Any]) -> None:
    seen = live["seen"]
    assert seen["starting"] == (503, "not ready: starting\n")
    assert seen["starting_health"] == (200, "ok: starting\n")
    for name in ("validator", "miner"):
        status, body = seen[f"{name}/healthz"]
        assert status == 200 and body.startswith("ok: round "), (name, body)
        status, body = seen[f"{name}/readyz"]
        assert status == 200 and body.startswith("ready: round "), (name, body)
    status, body = seen["miner/"]
    assert status == 404 and "/metrics" in body  # a miner serves no dashboard


def test_metrics_over_http_name_the_round_and_the_nodes_work(live: dict[str, Any]) -> None:
    seen = live["seen"]
    for name in ("validator", "miner"):
        status, text = seen[f"{name}/metrics"]
        assert status == 200
        samples = _samples(text)
        at = _value(samples, "seedswarm_round")
        assert at >= ROUNDS
        assert _value(samples, "seedswarm_ready") == 1
        assert _value(samples, "seedswarm_model_hash_agreement") == 1
        assert _value(samples, "seedswarm_last_final_round") == at - 1
        # every round since start was applied, and counted by how it came
        assert sum(_value(samples, "seedswarm_rounds_applied_total", via=via)
                   for via in ("gossip", "catch-up", "log")) == at


def test_final_counters_are_the_services_own(live: dict[str, Any]) -> None:
    validator: ValidatorService = live["validator"]
    miners: list[MinerService] = live["miners"]
    network_id = live["network"].network_id
    # every contribution a miner published reached the validator's pool, exactly once
    published = sum(m.counters.published for m in miners)
    assert published >= ROUNDS
    value = registry(NodeCollector(validator, network_id)).get_sample_value
    assert value("seedswarm_contributions_received_total") == published
    for miner in miners:
        c = miner.counters
        mvalue = registry(NodeCollector(miner, network_id)).get_sample_value
        assert mvalue("seedswarm_contributions_published_total") == c.published
        assert mvalue("seedswarm_round_phase_seconds_count", {"phase": "work"}) == (
            c.published + c.late + c.sat_out)
        # it measured the age of each certificate gossip brought it
        assert mvalue("seedswarm_gossip_latency_seconds_count", {"kind": "bundle"}) >= (
            miner.follower.applied_via["gossip"])


def test_every_served_metric_is_documented_and_prefixed(live: dict[str, Any]) -> None:
    collector = NodeCollector(live["validator"], live["network"].network_id)
    names = {f.name for f in collector.collect()}
    names |= {f.name for f in NodeCollector(live["miners"][0], "x").collect()}
    documented = {n.removesuffix("_total") for n in METRICS}
    assert names <= documented, names - documented
    assert all(n.startswith("seedswarm_") for n in METRICS)


def test_final_metrics_count_exactly_what_the_services_did(live: dict[str, Any]) -> None:
    validator: ValidatorService = live["validator"]
    text = registry(NodeCollector(validator, live["network"].network_id)).get_sample_value
    at = validator.follower.replica.round_index
    assert text("seedswarm_round") == at
    assert text("seedswarm_contributions_certified_total") == sum(
        len(validator.follower.open_entry(validator.follower.store.get(r) or b"").bundle
            .contributions) for r in range(at))
    noise = ATTACKER.public.raw.hex()
    sent = sum(1 for entry in validator.scoreboard.rounds.values()
               if any(r.miner.hex() == noise and r.round_index == entry.round_index
                      for r in validator.scoreboard.receipts.get(noise, ())))
    refused = validator.scoreboard.refusals_by_miner[noise]
    assert sent >= 1 and sum(refused.values()) == sent  # each scored round, it earned 0
    for reason, count in validator.scoreboard.refusals.items():
        assert text("seedswarm_contributions_refused_total",
                    {"stage": "scoring", "reason": reason}) == count
    rated = 0
    for miner in (k.public.raw.hex() for k, _ in MINERS):
        receipt = validator.scoreboard.latest_receipt(miner)
        if receipt is not None:
            rated += 1
            assert text("seedswarm_miner_rating_mu", {"miner": miner}) == receipt.rating_mu
    assert rated >= 2


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.points: list[int] = []
        self.rows: dict[str, dict[str, str]] = {}
        self.round = -1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "circle" and "point" in a.get("class", ""):
            self.points.append(int(a["data-round"]))
        if tag == "tr" and "data-miner" in a:
            self.rows[a["data-miner"]] = a
        if tag == "section" and a.get("id") == "summary":
            self.round = int(a["data-round"])


def test_the_dashboard_shows_every_miner_the_loss_curve_and_the_refusal(
        live: dict[str, Any]) -> None:
    validator: ValidatorService = live["validator"]
    data = dashboard_data(validator, None)
    page = _Page()
    page.feed(render_page(data))
    at = validator.follower.replica.round_index
    assert page.round == at >= ROUNDS
    assert page.points == list(range(at))  # one point per certified round
    assert [p[0] for p in data["loss"]] == list(range(at))
    assert set(page.rows) == {k.public.raw.hex() for k, _ in MINERS}
    noise = page.rows[ATTACKER.public.raw.hex()]
    receipt = validator.scoreboard.latest_receipt(ATTACKER.public.raw.hex())
    assert receipt is not None
    assert noise["data-reason-class"] not in ("", "scored")
    assert "refused" in noise.get("class", "")
    row = next(r for r in data["leaderboard"] if r["miner"] == ATTACKER.public.raw.hex())
    assert row["reason"] == receipt.reason and row["score"] == 0.0
    timeline = {r["round"]: r for r in data["timeline"]}
    assert set(range(at)) <= set(timeline)
    for r in range(at):
        assert timeline[r]["leader"] == LEADER.public.raw.hex()
        assert timeline[r]["approving_share"] == 1.0
        assert timeline[r]["final_after_s"] is not None
    # and the same page came over HTTP, with its script
    status, html = live["seen"]["page"]
    assert status == 200 and "<svg" in html and "/dashboard.js" in html
    status, part = live["seen"]["part"]
    assert status == 200 and part.startswith("<section id=\"summary\"")
    status, js = live["seen"]["js"]
    assert status == 200 and "fetch(\"/?part=main\"" in js


def test_a_port_in_use_is_one_line_naming_the_setting() -> None:
    async def clash() -> str:
        async def ok(request: HttpRequest) -> HttpResponse:
            return HttpResponse.text(200, "ok")

        first = await HttpServer({"/": ok}, name="metrics endpoint", read_timeout_s=1).start(
            "127.0.0.1", 0)
        try:
            await HttpServer({"/": ok}, name="metrics endpoint", read_timeout_s=1,
                             setting="metrics_port").start("127.0.0.1", first.port)
        except ConfigError as exc:
            return str(exc)
        finally:
            await first.close()
        return ""

    message = asyncio.run(clash())
    assert "is in use by another process" in message and "metrics_port" in message
    assert "\n" not in message


def test_settings_refuse_a_dashboard_on_a_miner_and_a_bad_log_format() -> None:
    with pytest.raises(ConfigError, match="only validators serve a dashboard"):
        NodeSettings(role="miner", network=Path("n"), keystore=Path("k"), state_dir=Path("s"),
                     dashboard_port=8080)
    with pytest.raises(ConfigError, match="log_format"):
        NodeSettings(role="miner", network=Path("n"), keystore=Path("k"), state_dir=Path("s"),
                     log_format="xml")
