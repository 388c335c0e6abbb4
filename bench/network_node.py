"""One node of bench.network: `python -m bench.network_node PLAN_FILE NAME`.

A node (the validator or a miner) starts its libp2p host, dials the validator and its three
predecessors, joins the topics its service and the probes use and waits until its GossipSub
mesh on them is formed; then, between file barriers (bench.network_barrier):

1. `ready`: the coordinator fixes genesis; the real service (`ValidatorService` /
   `MinerService`) runs the rounds, wrapped by bench.network_timing; the wire counters are read
   at genesis and when the node holds the last round's model;
2. `rounds`: the coordinator fixes the probe start; every node publishes its probes in its own
   time slots (one probe in flight network-wide), stamped with time.time_ns(), and records
   the arrival time of everyone else's;
3. `probed`: everyone has drained; the host stops and the node writes its result JSON.

The same coroutine runs as its own process (a deployment) or as one of many tasks in one
process (the in-process baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.network_barrier import arrive
from bench.network_timing import RoundMarks, instrument_miner, instrument_validator
from bench.network_wire import WireCounters, install_counters, key_seed, owned_transport
from protocol.domain_types import PublicKey

PROBE_TOPIC = "bench-probe"
MESH_TARGET = 4  # GossipSub's D_low in adapters.transport.libp2p_host
PREDECESSORS = 3
NETWORK_FILE = "network.toml"
BASE_FILE = "base.safetensors"


@dataclass(frozen=True)
class NodePlan:
    """Everything every node of one run agrees on (written once by the coordinator)."""

    names: tuple[str, ...]
    """names[0] is the validator; the rest are miners."""
    ports: tuple[int, ...]
    workdir: str
    rounds: int
    round_length: int
    probes: int
    probe_spacing_s: float
    certifier: str
    """"scoring" (the devnet's validator) or "equal" (equal weights, no scoring)."""
    stage_timeout_s: float
    absent: int = 0
    """Registered miners that never run: the validator waits for them in vain until it has
    heard the others for a round (then it stops expecting the silent ones)."""

    @property
    def directory(self) -> Path:
        return Path(self.workdir)

    def result_file(self, name: str) -> Path:
        return self.directory / "results" / f"{name}.json"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> NodePlan:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{**raw, "names": tuple(raw["names"]), "ports": tuple(raw["ports"])})


def _network(plan: NodePlan) -> Any:
    from protocol.netconfig import NetworkConfig

    return NetworkConfig.load(plan.directory / NETWORK_FILE)


def _addr(plan: NodePlan, index: int) -> str:
    peer = key_of(plan.names[index]).peer_id
    return f"/ip4/127.0.0.1/tcp/{plan.ports[index]}/p2p/{peer}"


async def _dial(plan: NodePlan, index: int, transport: Any) -> None:
    """Dial the validator and the predecessors until connected (they may start later)."""
    targets = {0, *range(max(1, index - PREDECESSORS), index)} - {index}
    deadline = time.monotonic() + plan.stage_timeout_s
    for target in sorted(targets):
        while True:
            try:
                await transport.connect(_addr(plan, target))
                break
            except Exception:  # not listening yet: a peer process still starting
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _drain(subscription: Any) -> None:
    """Consume a topic this node must join (to be in its mesh) but has no use for: an unread
    subscription would fill its queue and count drops."""
    async for _ in subscription:
        continue


@dataclass
class Probes:
    """Probe arrivals at this node: (publisher, sequence, sent ns, received ns)."""

    name: str
    arrivals: list[tuple[str, int, int, int]]

    async def receive(self, subscription: Any) -> None:
        async for delivery in subscription:
            received = time.time_ns()
            sender, seq, sent = delivery.data.decode().split("|")
            if sender != self.name:
                self.arrivals.append((sender, int(seq), int(sent), received))


async def _publish_probes(plan: NodePlan, index: int, transport: Any, start: float) -> None:
    n = len(plan.names)
    for seq in range(plan.probes):
        slot = start + (seq * n + index) * plan.probe_spacing_s
        await asyncio.sleep(max(0.0, slot - time.time()))
        stamp = time.time_ns()
        await transport.publish(PROBE_TOPIC, f"{plan.names[index]}|{seq}|{stamp}".encode())


def _load_state(plan: NodePlan, network: Any) -> Any:
    from runtime.model_state import ModelState

    return ModelState.from_base(network, plan.directory / BASE_FILE)


def absent_names(plan: NodePlan) -> tuple[str, ...]:
    """Names of the registered miners that never run."""
    return tuple(f"absent-{i}" for i in range(plan.absent))


def _miner_keys(plan: NodePlan) -> tuple[PublicKey, ...]:
    """Every registered miner's key, running or absent (the network's membership)."""
    return tuple(key_of(n).public.raw for n in (*plan.names[1:], *absent_names(plan)))


def _produce(plan: NodePlan, network: Any, key: Any) -> Any:
    from node.honest_miner import HonestMiner
    from node.service.produce import MinerProduce
    from training.work import WorkConfig

    return MinerProduce(HonestMiner(key), _miner_keys(plan), WorkConfig.of(network))


def _service(plan: NodePlan, network: Any, name: str, key: Any, state: Any, produce: Any,
             transport: Any, genesis: float) -> Any:
    from bench.equal_weight_engine import EqualWeightEngine
    from node.service.miner import MinerConfig, MinerService
    from training.work import WorkConfig
    from validator.scorer_store import scoring_certifier
    from validator.service.engine import ScoringEngine
    from validator.service.validator import ValidatorConfig, ValidatorService

    validator = key_of(plan.names[0])
    common: dict[str, Any] = {
        "network": network, "genesis_time": genesis, "state_dir": plan.directory / name,
        "validators": ((validator.public.raw, 1),), "peers": (validator.peer_id,),
        "last_round": plan.rounds,
    }
    if produce is not None:
        return MinerService(MinerConfig(**common), transport, state, produce)
    miners = _miner_keys(plan)
    engine_type = EqualWeightEngine if plan.certifier == "equal" else ScoringEngine
    scorer = scoring_certifier(network, key, plan.directory / name)
    engine = engine_type(state, scorer, miners, WorkConfig.of(network))
    return ValidatorService(ValidatorConfig(miners=miners, **common), key, transport, engine)


def key_of(name: str) -> Any:
    """The bench's NodeKey of node `name`."""
    from protocol.identity import NodeKey

    return NodeKey.from_bytes(key_seed(name))


async def _join(transport: Any, topics: list[str], tasks: asyncio.TaskGroup,
                probes: Probes) -> None:
    for topic in topics:
        subscription = await transport.subscribe(topic)
        tasks.create_task(probes.receive(subscription) if topic == PROBE_TOPIC
                          else _drain(subscription))


def _mesh(transport: Any, topics: list[str]) -> dict[str, int]:
    return {t: transport._node.reachable_subscribers(transport._gossip_topic(t)) for t in topics}


async def _wait_mesh(plan: NodePlan, transport: Any, topics: list[str]) -> dict[str, int]:
    want = min(MESH_TARGET, len(plan.names) - 1)
    try:
        async with asyncio.timeout(plan.stage_timeout_s):
            for topic in topics:
                await transport.wait_for_subscribers(topic, want)
    except TimeoutError:
        peers = len(transport.connected_peers())
        known = {t: len(v) for t, v in transport._node._pubsub.peer_topics.items()}
        _say("?", f"mesh not formed: {_mesh(transport, topics)}, {peers} peers connected, "
                  f"subscribers known {known}")
        raise
    return _mesh(transport, topics)


async def _run_rounds(plan: NodePlan, service: Any, genesis: float, counters: WireCounters,
                      name: str) -> dict[str, Any]:
    replica = service.state if hasattr(service, "state") else service.engine
    limit = genesis - time.time() + (plan.rounds + 4) * plan.round_length
    wire: dict[str, Any] = {}
    async with asyncio.TaskGroup() as group:
        task = group.create_task(service.run())
        try:
            async with asyncio.timeout(limit):
                await asyncio.sleep(max(0.0, genesis - time.time()))
                wire["at_genesis"] = counters.snapshot(name)
                while replica.round_index < plan.rounds:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                wire["at_last_round"] = counters.snapshot(name)
        finally:
            task.cancel()
    wire["round_reached"] = replica.round_index
    return wire


async def run_node(plan: NodePlan, name: str, counters: WireCounters) -> dict[str, Any]:
    """Run node `name` through every stage; write and return its result."""
    from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS

    index = plan.names.index(name)
    network = _network(plan)
    key = key_of(name)
    state = await asyncio.to_thread(_load_state, plan, network)
    produce = _produce(plan, network, key) if index > 0 else None
    if produce is not None:
        await asyncio.to_thread(produce, state)  # the first run pays allocations, kernels
    transport = owned_transport(name, network.network_id, plan.ports[index])
    meshed = [PROBE_TOPIC, TOPIC_BUNDLES]
    topics = meshed + ([] if index else [TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS])
    probes = Probes(name, [])
    marks = RoundMarks()
    timeout = plan.stage_timeout_s
    await transport.start()
    _say(name, "host started")
    try:
        async with asyncio.TaskGroup() as readers:
            await _dial(plan, index, transport)
            _say(name, "dialled")
            await _join(transport, topics, readers, probes)
            _say(name, "joined")
            mesh = await _wait_mesh(plan, transport, meshed)
            _say(name, f"meshed {mesh}")
            genesis = float((await arrive(plan.directory / "barrier", "ready", name,
                                          timeout))["genesis"])
            service = _service(plan, network, name, key, state, produce, transport, genesis)
            if produce is None:
                instrument_validator(service, marks)
            else:
                instrument_miner(service, marks, genesis)
            wire = await _run_rounds(plan, service, genesis, counters, name)
            start = float((await arrive(plan.directory / "barrier", "rounds", name,
                                        timeout))["probe_start"])
            await _publish_probes(plan, index, transport, start)
            drained = start + len(plan.names) * plan.probes * plan.probe_spacing_s + 2.0
            await asyncio.sleep(max(0.0, drained - time.time()))
            await arrive(plan.directory / "barrier", "probed", name, timeout)
            raise _Done
    except* _Done:
        pass
    finally:
        with contextlib.suppress(Exception):
            await transport.stop()
    result = {
        "name": name, "role": "miner" if index else "validator", "genesis": genesis,
        "mesh_at_ready": mesh, "wire": wire, "marks": marks.to_json(),
        "probes": probes.arrivals, "status": _status(service),
    }
    path = plan.result_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result), encoding="utf-8")
    return result


def _say(name: str, what: str) -> None:
    """A progress line in the node's log (its stdout)."""
    print(f"{time.time():.3f} {name}: {what}", flush=True)


class _Done(Exception):
    """Ends the readers' task group once the node's stages are over."""


def _status(service: Any) -> dict[str, Any]:
    status: dict[str, Any] = service.status()
    keep = ("round", "model_hash", "published", "late", "applied", "catch_ups", "certified")
    return {k: status[k] for k in keep if k in status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("plan", type=Path)
    parser.add_argument("name")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    counters = install_counters()
    asyncio.run(run_node(NodePlan.load(args.plan), args.name, counters))


if __name__ == "__main__":
    main()
