"""`seedswarm devnet`: a whole local network, every node its own OS process.

`Devnet.start` writes the base model and network file, starts the chain, deploys the
contracts, funds and registers every node, writes keystores and node settings, starts the
broker (MQTT) and the node processes. `Devnet.stop` stops everything it started, whatever
state the run is in. `run_devnet` drives a run to its end: every node at the last round and
the run's epochs settled on-chain, then a result with final hashes, rewards and losses.

Every node serves its metrics and probes on a free loopback port, every validator its dashboard
on another; `Devnet.export` writes them to endpoints.json beside the network file, so tools and
tests find them without reading logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.chain.backends import funded_account
from adapters.chain.client import ChainClient
from adapters.chain.deployment import Deployment
from adapters.chain.faucet import Faucet
from adapters.storage.keystore import KeyBundle, ScryptParams, encrypt_keystore
from adapters.storage.logstore import write_atomic
from protocol.domain_types import ModelHash, Wei
from protocol.identity import peer_id_from_public_bytes
from protocol.netconfig import NetworkConfig
from seedswarm.devnet.calibration import MIN_ROUND_S, cores, measure_round
from seedswarm.devnet.chainsetup import (
    STAKE,
    Participant,
    chain_clock_offset,
    deploy,
    planned_genesis,
    register_all,
)
from seedswarm.devnet.devnet_genesis import network_config, write_base
from seedswarm.devnet.processes import Fleet, NodeProcess, node_env
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.join_bundle import ChainInfo, GenesisInfo, JoinBundle, PeerInfo
from seedswarm.launch.local_chain import ChainHandle, start_chain
from seedswarm.launch.settings import DEFAULT_WORK_FRACTION, NodeSettings

_log = logging.getLogger("seedswarm.devnet")
NETWORK_FILE = "network.toml"
BASE_FILE = "base.safetensors"
ENDPOINTS_FILE = "endpoints.json"
FAUCET_AMOUNT = Wei(10 * STAKE)
"""What the faucet sends a joiner: a stake and plenty for gas."""
DEVNET_SCRYPT = ScryptParams(n=2**12)  # throwaway keys: fast to unlock, still encrypted
Snapshot = dict[str, dict[str, Any]]
RESOLVED = ("settled", "skipped", "failed")
"""Ledger stages an epoch ends in (validator.service.ledger)."""



class DevnetError(RuntimeError):
    """The devnet could not start or a node failed."""


class Devnet:
    """A running local network; see the module docstring."""

    def __init__(self, spec: DevnetSpec) -> None:
        self.spec = spec
        self._own_workdir = spec.workdir is None
        self.workdir = spec.workdir or Path(tempfile.mkdtemp(prefix="seedswarm-devnet-"))
        self.password = secrets.token_hex(16)
        self.participants: list[Participant] = []
        self.fleet = Fleet(env=node_env(self.password))
        self.chain: ChainHandle | None = None
        self.broker: Any = None
        self.faucet: Faucet | None = None
        self.deployment: Deployment | None = None
        self.network: NetworkConfig | None = None
        self.genesis_time = 0.0
        self.bundle: JoinBundle | None = None
        self.schedule = DevnetSchedule.derive(spec, spec.round_length or MIN_ROUND_S)
        self._reader: ChainClient | None = None
        self.http_ports: dict[str, tuple[int, int]] = {}
        """Node name -> (metrics port, dashboard port; 0 for a miner)."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bring everything up (see the module docstring); on failure, tear it down."""
        try:
            await self._prepare()
            self.fleet.start_all()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the nodes, the broker and the chain (idempotent)."""
        await asyncio.to_thread(self.fleet.stop_all)
        faucet, self.faucet = self.faucet, None
        if faucet is not None:
            await asyncio.to_thread(faucet.stop)
        broker, self.broker = self.broker, None
        if broker is not None:
            await broker.stop()
        chain, self.chain = self.chain, None
        if chain is not None:
            await asyncio.to_thread(chain.stop)

    def export(self, directory: Path) -> Path:
        """Write the network file (and the genesis checkpoint it names) to `directory`:
        everything someone needs to join this devnet; and endpoints.json, where every node's
        metrics, health and dashboard pages are (`node_endpoints`)."""
        assert self.bundle is not None
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.workdir / BASE_FILE, directory / BASE_FILE)
        path = directory / NETWORK_FILE
        self.bundle.save(path)
        endpoints = {**self.node_endpoints(), "network_file": str(path.resolve()),
                     **{k: v for k, v in self.endpoints().items()
                        if k in ("chain", "broker", "bootstrap", "faucet", "round_length",
                                 "genesis_time")}}
        write_atomic(directory / ENDPOINTS_FILE,
                     (json.dumps(endpoints, indent=2, sort_keys=True) + "\n").encode())
        return path

    def node_endpoints(self) -> dict[str, Any]:
        """{"nodes": {name: {"role", "metrics", "health", "ready"[, "dashboard"]}},
        "dashboards": [url, ...]}: every node's pages (seedswarm.launch.node_http)."""
        nodes: dict[str, dict[str, str]] = {}
        dashboards: list[str] = []
        for p in self.participants:
            metrics, dashboard = self.http_ports[p.name]
            base = f"http://127.0.0.1:{metrics}"
            nodes[p.name] = {"role": p.role, "metrics": f"{base}/metrics",
                             "health": f"{base}/healthz", "ready": f"{base}/readyz"}
            if dashboard:
                nodes[p.name]["dashboard"] = f"http://127.0.0.1:{dashboard}/"
                dashboards.append(nodes[p.name]["dashboard"])
        return {"nodes": nodes, "dashboards": dashboards}

    def endpoints(self) -> dict[str, Any]:
        """Where everything runs: for the operator's screen and for scripts."""
        assert self.chain is not None and self.bundle is not None
        peers = self.bundle.peers
        return {
            "chain": self.chain.url,
            "broker": peers.broker or None,
            "bootstrap": list(peers.bootstrap),
            "faucet": None if self.faucet is None else self.faucet.url,
            "network_file": str(self.workdir / NETWORK_FILE),
            "workdir": str(self.workdir),
            "round_length": self.schedule.round_length,
            "genesis_time": self.genesis_time,
            "dashboards": self.node_endpoints()["dashboards"],
        }

    def cleanup(self) -> None:
        """Remove the work directory if the devnet created it."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _prepare(self) -> None:
        spec = self.spec
        base = self.workdir / BASE_FILE
        base_hash, fingerprint = await asyncio.to_thread(write_base, spec, base)
        round_length = spec.round_length
        if round_length is None:
            round_length = await asyncio.to_thread(self._measured_round, base, base_hash)
        self.schedule = DevnetSchedule.derive(spec, round_length)
        _log.info("devnet schedule: %s", self.schedule)
        self.network = network_config(spec, base_hash, self.schedule)
        self.participants = self._make_participants()
        self.chain = await asyncio.to_thread(start_chain, spec.chain)
        chain = self.chain
        genesis = await asyncio.to_thread(planned_genesis, chain, spec, len(self.participants))
        block = await asyncio.to_thread(lambda: int(chain.w3.eth.block_number))
        self.deployment = await asyncio.to_thread(deploy, chain, spec, self.network, genesis,
                                                  self.schedule)
        await asyncio.to_thread(register_all, chain, self.deployment, self.participants)
        offset = await asyncio.to_thread(chain_clock_offset, chain)
        self.genesis_time = genesis - max(0.0, offset)
        await self._start_broker()
        if spec.keep_alive:
            self.faucet = Faucet(chain.url, FAUCET_AMOUNT).start()
        self._write_nodes(fingerprint, block)

    def _measured_round(self, base: Path, base_hash: ModelHash) -> int:
        """The round length this machine needs now (seedswarm.devnet.calibration)."""
        spec = self.spec
        provisional = network_config(spec, base_hash, DevnetSchedule.derive(spec, MIN_ROUND_S))
        cost = measure_round(provisional, base, spec.total_miners)
        nodes = spec.total_miners + spec.validators
        length = cost.round_length(nodes, DEFAULT_WORK_FRACTION, cores())
        _log.info("measured %s: %d s rounds", cost, length)
        return length

    def _make_participants(self) -> list[Participant]:
        spec = self.spec
        out = [Participant(f"validator-{i}", "validator", KeyBundle.generate(),
                           stake=Wei((i + 1) * 10**18)) for i in range(spec.validators)]
        out += [Participant(f"miner-{i}", "miner", KeyBundle.generate())
                for i in range(spec.miners)]
        out += [Participant(f"attacker-{kind}-{i}", "miner", KeyBundle.generate(), attack=kind)
                for kind, count in spec.attackers for i in range(count)]
        for p in out:
            text = encrypt_keystore(p.keys, self.password, scrypt=DEVNET_SCRYPT)
            write_atomic(self.workdir / "keys" / p.name / "keystore.json", text.encode())
        return out

    async def _start_broker(self) -> None:
        if self.spec.transport != "mqtt":
            return
        from adapters.transport.mqtt_broker import EmbeddedBroker, MosquittoBroker

        broker: EmbeddedBroker | MosquittoBroker
        broker = EmbeddedBroker() if self.spec.broker == "embedded" else MosquittoBroker()
        await broker.start()
        self.broker = broker

    def _write_nodes(self, fingerprint: str, deployment_block: int) -> None:
        from adapters.transport.mqtt_broker import free_loopback_port

        ports = {p.name: free_loopback_port() for p in self.participants}
        self.http_ports = {
            p.name: (free_loopback_port(),
                     free_loopback_port() if p.role == "validator" else 0)
            for p in self.participants}
        addrs = tuple(f"/ip4/127.0.0.1/tcp/{ports[p.name]}/p2p/{p.keys.peer_id}"
                      for p in self.participants)
        self.bundle = self._bundle(fingerprint, deployment_block, addrs)
        self.bundle.save(self.workdir / NETWORK_FILE)
        for p in self.participants:
            settings = self._settings(p, ports[p.name])
            path = self.workdir / "nodes" / f"{p.name}.toml"
            write_atomic(path, settings.to_toml().encode())
            self.fleet.nodes[p.name] = NodeProcess(
                p.name, p.role, path, settings.status_file or path,
                self.workdir / "logs" / f"{p.name}.out", attack=p.attack,
            )

    def _bundle(self, fingerprint: str, deployment_block: int,
                addrs: tuple[str, ...]) -> JoinBundle:
        """The devnet's network file: what every node, and anyone joining, starts from."""
        assert self.chain is not None and self.network is not None
        assert self.deployment is not None
        d = self.deployment
        libp2p = self.spec.transport == "libp2p"
        broker = "" if self.broker is None else f"mqtt://127.0.0.1:{self.broker.port}"
        return JoinBundle(
            network=self.network,
            genesis=GenesisInfo(time=self.genesis_time,
                                model_hash=self.network.base_checkpoint_hash,
                                checkpoint=BASE_FILE, task_fingerprint=fingerprint),
            chain=ChainInfo(url=self.chain.url, chain_id=d.chain_id, token=d.token,
                            registry=d.registry, incentives=d.incentives,
                            deployment_block=deployment_block, min_miner_stake=STAKE,
                            min_validator_stake=STAKE,
                            faucet="" if self.faucet is None else self.faucet.url),
            peers=PeerInfo(transport=self.spec.transport, bootstrap=addrs if libp2p else (),
                           broker=broker),
        )

    def _settings(self, p: Participant, port: int) -> NodeSettings:
        validators = [v.keys.node_key.public.raw for v in self.participants
                      if v.role == "validator"]
        root = self.workdir
        return NodeSettings(
            role=p.role, network=root / NETWORK_FILE,
            keystore=root / "keys" / p.name, state_dir=root / "state" / p.name,
            listen_port=port, peers=tuple(peer_id_from_public_bytes(k) for k in validators),
            last_round=-1 if self.spec.keep_alive else self.spec.rounds,
            status_file=root / "status" / f"{p.name}.json",
            log_file=root / "logs" / f"{p.name}.log",
            metrics_port=self.http_ports[p.name][0], dashboard_port=self.http_ports[p.name][1],
        )

    # -- observation ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every node's latest status."""
        return self.fleet.statuses()

    def check_alive(self) -> None:
        """Raise DevnetError if a node exited unexpectedly."""
        crashed = self.fleet.crashed()
        if crashed:
            node = crashed[0]
            raise DevnetError(f"{node.name} exited unexpectedly:\n{node.output_tail()}")

    async def wait_until(self, predicate: Callable[[Snapshot], bool], *, limit_s: float,
                         what: str, on_update: Callable[[Snapshot], None] | None = None) -> None:
        """Poll the nodes' status until `predicate` holds; DevnetError after `limit_s`."""
        deadline = time.monotonic() + limit_s
        while True:
            snapshot = self.snapshot()
            if on_update is not None:
                on_update(snapshot)
            if predicate(snapshot):
                return
            self.check_alive()
            if time.monotonic() > deadline:
                raise DevnetError(f"timed out after {limit_s:.0f}s waiting for {what}")
            await asyncio.sleep(0.25)

    async def wait_for_epochs(self, on_update: Callable[[Snapshot], None] | None) -> None:
        """Until every epoch the validators booked is settled or lost (`epochs_resolved`).

        A network behind the clock books late rounds into later epochs, so the deadline moves
        with the latest epoch booked: its end, its commit and reveal windows, and as many
        rounds again as the run's slack. DevnetError once it passes.
        """
        schedule, spec = self.schedule, self.spec
        slack = spec.startup_s + schedule.epoch_s
        while True:
            snapshot = self.snapshot()
            if on_update is not None:
                on_update(snapshot)
            if self.epochs_resolved(snapshot):
                return
            self.check_alive()
            latest = max(self.booked_epochs(snapshot), default=spec.epochs_to_settle - 1)
            deadline = (self.genesis_time + (latest + 1) * schedule.epoch_s
                        + schedule.settle_delay_s() + slack)
            if time.time() > deadline:
                stages = self.epochs(snapshot)
                raise DevnetError(f"epochs not settled {time.time() - deadline + slack:.0f} s "
                                  f"after they should have been: {stages}")
            await asyncio.sleep(0.25)

    @staticmethod
    def booked_epochs(snapshot: Snapshot) -> set[int]:
        """Epochs any validator booked scores in."""
        return {int(e) for n, s in snapshot.items() if n.startswith("validator")
                for e, r in s.get("ledger", {}).get("epochs", {}).items() if r.get("scores")}

    def reader(self) -> ChainClient:
        """A chain client for reading (eth-tester wants a funded caller even for calls)."""
        if self._reader is None:
            assert self.chain is not None and self.deployment is not None
            account = funded_account(self.chain.w3, 10**18)
            self._reader = ChainClient.connect(self.chain.w3, self.deployment, account)
        return self._reader

    def epochs(self, snapshot: Snapshot) -> dict[int, dict[str, Any]]:
        """Every epoch a validator booked scores in: its status on-chain and each
        validator's stage (with the cause when it lost the epoch)."""
        books = {n: s.get("ledger", {}).get("epochs", {}) for n, s in snapshot.items()
                 if n.startswith("validator")}
        booked = sorted({int(e) for book in books.values() for e, r in book.items()
                         if r.get("scores")})
        reader = self.reader()
        out: dict[int, dict[str, Any]] = {}
        for epoch in booked:
            stages = {n: {k: v for k, v in book[str(epoch)].items() if k in ("stage", "reason")}
                      for n, book in books.items() if str(epoch) in book}
            out[epoch] = {"status": reader.incentives.epoch_status(epoch).name.lower(),
                          "validators": stages}
        return out

    def epochs_resolved(self, snapshot: Snapshot) -> bool:
        """Whether every booked epoch reached its end on every validator: settled, or lost
        with its cause written down; and at least one epoch was booked."""
        books = [s.get("ledger", {}).get("epochs", {}) for n, s in snapshot.items()
                 if n.startswith("validator")]
        booked = [r for book in books for r in book.values() if r.get("scores")]
        return bool(booked) and all(r.get("stage") in RESOLVED for r in booked)

    def rewards(self) -> dict[str, int]:
        """Per miner: claimable plus claimed reward tokens, in wei."""
        reader = self.reader()
        return {
            p.name: reader.incentives.claimable(p.keys.evm_address)
            + reader.token_balance(p.keys.evm_address)
            for p in self.participants if p.role == "miner"
        }

    def end_time(self) -> float:
        """When the last epoch's settlement window opens (wall clock, roughly)."""
        spec, schedule = self.spec, self.schedule
        epochs_end = self.genesis_time + spec.epochs_to_settle * schedule.epoch_s
        rounds_end = self.genesis_time + spec.rounds * schedule.round_length
        return max(epochs_end + schedule.settle_delay_s(), rounds_end)


def all_at_round(target: int) -> Callable[[Snapshot], bool]:
    """Predicate: every node's replica holds round `target`'s model."""
    return lambda snapshot: all(s.get("round", -1) >= target for s in snapshot.values())


async def serve_devnet(
    spec: DevnetSpec, export: Path | None, on_start: Callable[[dict[str, Any]], None],
    on_update: Callable[[Snapshot], None],
) -> None:
    """Bring a devnet up and keep it up until cancelled (Ctrl-C, SIGTERM); with `export`,
    write its network file there first."""
    _cancel_on_sigterm()
    devnet = Devnet(spec)
    await devnet.start()
    try:
        endpoints = devnet.endpoints()
        if export is not None:
            endpoints["export"] = str(devnet.export(export))
        on_start(endpoints)
        while True:
            devnet.check_alive()
            on_update(devnet.snapshot())
            await asyncio.sleep(devnet.schedule.round_length / 4)
    finally:
        await devnet.stop()


def _cancel_on_sigterm() -> None:
    """SIGTERM stops a serving devnet as Ctrl-C does: everything it started stops with it."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run_devnet(
    spec: DevnetSpec, on_update: Callable[[Snapshot], None] | None = None, *,
    export: Path | None = None, on_start: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run a devnet to its end and return the result (see `devnet_result`); with `export`,
    write its network file and endpoints.json there once it is up (`Devnet.export`)."""
    devnet = Devnet(spec)
    await devnet.start()
    try:
        endpoints = devnet.endpoints()
        if export is not None:
            endpoints["export"] = str(devnet.export(export))
        if on_start is not None:
            on_start(endpoints)
        schedule = devnet.schedule
        # a late round books its scores into a later epoch: allow the run to slip by an epoch
        slack = spec.startup_s + 2 * schedule.epoch_s + schedule.settle_delay_s()
        limit = devnet.end_time() - time.time() + slack
        await devnet.wait_until(all_at_round(spec.rounds), limit_s=limit,
                                what=f"every node at round {spec.rounds}", on_update=on_update)
        await devnet.wait_for_epochs(on_update)
        return devnet_result(devnet)
    finally:
        await devnet.stop()


def devnet_result(devnet: Devnet) -> dict[str, Any]:
    """The run's summary: final hashes, on-chain rewards, validation loss per round, wiring."""
    snapshot = devnet.snapshot()
    validator = next(s for n, s in snapshot.items() if n.startswith("validator"))
    val_loss = validator.get("ledger", {}).get("val_loss", {})
    assert devnet.chain is not None and devnet.network is not None
    return {
        "epochs": {str(e): v for e, v in devnet.epochs(snapshot).items()},
        "round_length": devnet.schedule.round_length,
        "final_model_hashes": {n: s.get("model_hash") for n, s in snapshot.items()},
        "final_rounds": {n: s.get("round") for n, s in snapshot.items()},
        "rewards": devnet.rewards(),
        "val_loss": [val_loss[k] for k in sorted(val_loss, key=int)],
        "transport": devnet.spec.transport,
        "broker": devnet.spec.broker if devnet.spec.transport == "mqtt" else None,
        "chain": devnet.chain.kind,
        "chain_url": devnet.chain.url,
        "network_id": devnet.network.network_id,
        "miners": devnet.spec.miners,
        "attackers": {p.name: p.attack for p in devnet.participants if p.attack},
        "validators": devnet.spec.validators,
        "rounds": devnet.spec.rounds,
        "workdir": str(devnet.workdir),
        "endpoints": devnet.node_endpoints(),
        "nodes": snapshot,
    }
