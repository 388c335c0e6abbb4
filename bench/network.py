"""Benchmark of the live network on loopback: 16 libp2p nodes running the real services.

    python -m bench.network [--json PATH] [--nodes 16] [--rounds 6] [--round-length 3]

One process hosts 16 py-libp2p nodes (TCP + Noise + Yamux, GossipSub) on 127.0.0.1: one
validator and 15 miners running `ValidatorService` / `MinerService` on a tiny model for a few
rounds, then every node publishes timestamped probes. Measured:

* gossip propagation latency (publish -> delivery at every other node), p50 / p99;
* bytes on the wire per miner per round, counted at the socket: every read and write of
  py-libp2p's TCP stream is added to the counter of the node that owns the connection (the
  owner is recorded when the stream is created, inside that node's task tree);
* round overhead: per miner and round, the time the protocol keeps the miner busy or waiting
  (from its own work deadline until it holds the next round's certified model, plus applying,
  checkpointing and publishing) over the round length. The baseline is the same miner's
  compute time in that round, so the ratio overhead / compute is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import hashlib
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

GOAL_P99_MS = 50.0
GOAL_OVERHEAD = 0.05
PROBE_SPACING_S = 0.1
_OWNER: contextvars.ContextVar[str] = contextvars.ContextVar("owner", default="?")


@dataclass
class WireCounters:
    """Bytes read and written at py-libp2p's TCP streams, per owning node."""

    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)

    def install(self) -> None:
        """Wrap TrioTCPStream's constructor, read and write (this process only)."""
        from libp2p.io.trio import TrioTCPStream

        counters = self
        init, read, write = TrioTCPStream.__init__, TrioTCPStream.read, TrioTCPStream.write

        def counted_init(stream: Any, *args: Any) -> None:
            init(stream, *args)
            stream.bench_owner = _OWNER.get()

        async def counted_write(stream: Any, data: bytes) -> None:
            await write(stream, data)
            counters.sent[getattr(stream, "bench_owner", "?")] += len(data)

        async def counted_read(stream: Any, n: int | None = None) -> bytes:
            data = await read(stream, n)
            counters.received[getattr(stream, "bench_owner", "?")] += len(data)
            return data

        TrioTCPStream.__init__ = counted_init  # type: ignore[method-assign,assignment]
        TrioTCPStream.write = counted_write  # type: ignore[method-assign,assignment]
        TrioTCPStream.read = counted_read  # type: ignore[method-assign,assignment]


def _key_seed(label: str) -> bytes:
    return hashlib.sha256(f"bench-network/{label}".encode()).digest()


def _owned_transport(name: str, network_id: str, bootstrap: tuple[str, ...]) -> Any:
    """A libp2p transport whose host runs (and opens connections) as `name`."""
    from protocol.transport.base import Limits
    from protocol.transport.libp2p_host import Libp2pConfig
    from protocol.transport.libp2p_transport import Libp2pTransport

    config = Libp2pConfig(key_seed=_key_seed(name), bootstrap=bootstrap)
    transport = Libp2pTransport(config, network_id=network_id,
                                limits=Limits(max_message_bytes=1 << 20))
    node = transport._node
    original = node.run

    async def run_as_owner(*, task_status: Any) -> None:
        _OWNER.set(name)
        await original(task_status=task_status)

    node.run = run_as_owner  # type: ignore[method-assign]
    return transport


@dataclass
class MinerTimes:
    """Per round: compute, and the protocol's share (apply, checkpoint, publish, waiting)."""

    compute: dict[int, float] = field(default_factory=dict)
    protocol: dict[int, float] = field(default_factory=dict)
    ready_at: dict[int, float] = field(default_factory=dict)


def _instrument_miner(service: Any, times: MinerTimes) -> None:
    state, produce, transport = service.state, service.produce, service.transport
    apply, save, publish = state.apply_bundle, state.save, transport.publish

    def timed_produce(s: Any) -> bytes:
        start = time.perf_counter()
        try:
            return bytes(produce(s))
        finally:
            times.compute[s.round_index] = time.perf_counter() - start

    def timed(fn: Callable[..., Any], round_of: Callable[[], int]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                r = round_of()
                times.protocol[r] = times.protocol.get(r, 0.0) + time.perf_counter() - start
        return wrapper

    async def timed_publish(topic: str, data: bytes) -> None:
        start = time.perf_counter()
        await publish(topic, data)
        r = state.round_index
        times.protocol[r] = times.protocol.get(r, 0.0) + time.perf_counter() - start

    def applied_save(directory: Any) -> Any:
        result = timed(save, lambda: state.round_index - 1)(directory)
        times.ready_at[state.round_index] = time.time()
        return result

    service.produce = timed_produce
    state.apply_bundle = timed(apply, lambda: state.round_index - 1)
    state.save = applied_save
    transport.publish = timed_publish


async def _build(nodes: int, round_length: int, rounds: int, workdir: Path) -> dict[str, Any]:
    from node.service.engine import ModelState
    from node.service.miner import MinerConfig, MinerService
    from protocol.identity import NodeKey
    from seedswarm.devnet.engine import CertifyingEngine, work_config
    from seedswarm.devnet.genesis import network_config, write_base
    from seedswarm.devnet.miners import miner_produce
    from seedswarm.devnet.spec import DevnetSpec
    from seedswarm.sim.roles import EqualWeightCertifier, HonestMiner
    from validator.service.validator import ValidatorConfig, ValidatorService

    spec = DevnetSpec(miners=nodes - 1, rounds=rounds, round_length=round_length)
    base = workdir / "base.safetensors"
    network = network_config(spec, write_base(spec, base))
    work = work_config(network)
    names = ["validator"] + [f"miner-{i}" for i in range(nodes - 1)]
    keys = {n: NodeKey.from_bytes(_key_seed(n)) for n in names}
    miner_keys = tuple(keys[n].public.raw for n in names[1:])
    leader = keys["validator"]
    transports: dict[str, Any] = {}
    for i, name in enumerate(names):
        earlier = [transports[n].listen_addrs[0] + f"/p2p/{transports[n].peer_id}"
                   for n in names[max(0, i - 3):i]]
        transports[name] = _owned_transport(name, network.network_id, tuple(earlier))
        await transports[name].start()
    genesis = time.time() + 8.0
    common: dict[str, Any] = {"network": network, "genesis_time": genesis,
                              "peers": (leader.peer_id,), "last_round": rounds}
    vstate = ModelState.from_base(network, base)
    services: dict[str, Any] = {"validator": ValidatorService(
        ValidatorConfig(state_dir=workdir / "validator", validators=((leader.public.raw, 1),),
                        miners=miner_keys, **common),
        leader, transports["validator"],
        CertifyingEngine(vstate, EqualWeightCertifier(64), miner_keys, work))}
    times: dict[str, MinerTimes] = {}
    for name in names[1:]:
        config = MinerConfig(state_dir=workdir / name, validators=((leader.public.raw, 1),),
                             **common)
        service = MinerService(config, transports[name], ModelState.from_base(network, base),
                               miner_produce(HonestMiner(keys[name]), miner_keys, work))
        times[name] = MinerTimes()
        _instrument_miner(service, times[name])
        services[name] = service
    return {"network": network, "transports": transports, "services": services,
            "times": times, "genesis": genesis}


async def _probe_latency(transports: dict[str, Any], per_node: int) -> list[float]:
    """Every node publishes `per_node` timestamped probes; latency at every other node, ms."""
    subs = {n: await t.subscribe("bench-probe") for n, t in transports.items()}
    async with asyncio.timeout(30):  # every node meshed with all its (3+) neighbours
        for t in transports.values():
            await t.wait_for_subscribers("bench-probe", min(3, len(transports) - 1))
    await asyncio.sleep(2.0)  # two GossipSub heartbeats: let the meshes settle
    latencies: list[float] = []
    expected = len(transports) * per_node * (len(transports) - 1)

    async def drain(name: str) -> None:
        async for delivery in subs[name]:
            sender, sent = delivery.data.split(b"|", 1)
            if sender.decode() != name:
                latencies.append((time.perf_counter() - float(sent)) * 1000)

    async with asyncio.TaskGroup() as group:
        readers = [group.create_task(drain(n)) for n in transports]
        for _ in range(per_node):
            for name, t in transports.items():
                await t.publish("bench-probe", f"{name}|{time.perf_counter()!r}".encode())
                # one message in flight at a time, as contributions trickle in during a round
                # (a burst would measure py-libp2p's ~500 msg/s throughput ceiling instead)
                await asyncio.sleep(PROBE_SPACING_S)
        deadline = time.time() + 10
        while len(latencies) < expected and time.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for task in readers:
            task.cancel()
    return latencies


async def run(nodes: int, rounds: int, round_length: int, probes: int) -> dict[str, Any]:
    """Build the network, run the rounds, probe gossip; return the measurements."""
    counters = WireCounters()
    counters.install()
    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        built = await _build(nodes, round_length, rounds, Path(tmp))
        services, transports = built["services"], built["transports"]
        try:
            sent_before = Counter(counters.sent)
            limit = built["genesis"] - time.time() + (rounds + 4) * round_length
            async with asyncio.timeout(limit):
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(s.run()) for s in services.values()]
                    while any(s.state.round_index < rounds if hasattr(s, "state")  # noqa: ASYNC110
                              else s.engine.round_index < rounds for s in services.values()):
                        await asyncio.sleep(0.1)
                    for task in tasks:
                        task.cancel()
            sent_rounds = counters.sent - sent_before
            latencies = await _probe_latency(transports, probes)
        finally:
            # py-libp2p can fail while hosts that share one trio run close under traffic;
            # the measurements are taken by then, so shutdown errors are only reported
            stopped = await asyncio.gather(*(t.stop() for t in transports.values()),
                                           return_exceptions=True)
            failures = [r for r in stopped if isinstance(r, BaseException)]
            if failures:
                Console(stderr=True).print(f"{len(failures)} transports failed to stop cleanly")
    return _summarise(built, sent_rounds, counters, latencies, rounds, round_length)


def _summarise(built: dict[str, Any], sent: Counter[str], counters: WireCounters,
               latencies: list[float], rounds: int, round_length: int) -> dict[str, Any]:
    clock_start, deadline = built["genesis"], 0.6 * round_length
    overheads, compute, wait = [], [], []
    for times in built["times"].values():
        for r in range(1, rounds):
            ready = times.ready_at.get(r)
            if ready is None or r - 1 not in times.compute:
                continue
            waited = ready - (clock_start + (r - 1) * round_length + deadline)
            busy = times.protocol.get(r - 1, 0.0)
            wait.append(max(0.0, waited))
            overheads.append((busy + max(0.0, waited - busy)) / round_length)
            compute.append(times.compute[r - 1])
    miners = [n for n in sent if n.startswith("miner")]
    per_miner = statistics.mean(sent[n] for n in miners) / rounds if miners else 0.0
    latencies.sort()
    return {
        "nodes": len(built["transports"]),
        "rounds": rounds,
        "round_length_s": round_length,
        "gossip_samples": len(latencies),
        "gossip_p50_ms": statistics.median(latencies) if latencies else None,
        "gossip_p99_ms": latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "wire_bytes_per_miner_per_round": per_miner,
        "wire_bytes_validator_per_round": sent.get("validator", 0) / rounds,
        "wire_bytes_unattributed": counters.sent.get("?", 0),
        "round_overhead_fraction": statistics.mean(overheads) if overheads else None,
        "certificate_wait_s_p50": statistics.median(wait) if wait else None,
        "compute_s_p50": statistics.median(compute) if compute else None,
        "overhead_over_compute": (statistics.mean(overheads) * round_length
                                  / statistics.mean(compute)) if compute else None,
        "goals": {"gossip_p99_ms": GOAL_P99_MS, "round_overhead_fraction": GOAL_OVERHEAD},
    }


def _table(result: dict[str, Any]) -> Table:
    table = Table(title=f"network: {result['nodes']} libp2p nodes on loopback, "
                        f"{result['rounds']} rounds of {result['round_length_s']} s")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    rows = [("gossip p50 (ms)", result["gossip_p50_ms"], ""),
            ("gossip p99 (ms)", result["gossip_p99_ms"], f"<= {GOAL_P99_MS}"),
            ("wire bytes / miner / round", result["wire_bytes_per_miner_per_round"], ""),
            ("wire bytes / validator / round", result["wire_bytes_validator_per_round"], ""),
            ("round overhead fraction", result["round_overhead_fraction"], f"<= {GOAL_OVERHEAD}"),
            ("certificate wait p50 (s)", result["certificate_wait_s_p50"], ""),
            ("compute per round p50 (s)", result["compute_s_p50"], "")]
    for label, value, goal in rows:
        table.add_row(label, "-" if value is None else f"{value:.4g}", goal)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--round-length", type=int, default=3)
    parser.add_argument("--probes", type=int, default=10, help="probes per node")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    result = asyncio.run(run(args.nodes, args.rounds, args.round_length, args.probes))
    Console().print(_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
