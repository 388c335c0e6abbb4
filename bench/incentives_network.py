"""bench.incentives' network-level attackers, on real transports and the real services.

    python -m bench.incentives_network [--json PATH] [--rounds 4] [--attack mqtt-flood|replay]

The other attacker classes of bench.incentives send bad work through the simulator; these two
attack the network itself, so they run where the attack lives: one validator and honest
miners running `ValidatorService` / `MinerService` (scoring pipeline, devnet model) in one
process, over a real transport. Each network runs twice, the same keys and genesis, without
and with the attacker, and the two runs are compared:

* ``mqtt-flood`` (issue 15, defect 2), through a real mosquitto broker: before genesis the
  attacker publishes ``flood_burst`` tiny frames, each signed by a throw-away key of its own
  (a signed contribution on the contributions topic, noise on the bundles topic), then keeps
  ``flood_rate_per_s`` more coming until the run ends. Before the fix this filled every
  node's one table of senders: miners stayed at round 0, the validator certified empty rounds.
* ``replay`` (defect 5), over libp2p: a stranger peer, connected to every node, captures the
  miners' own signed gossip frames and, twice a round, sends every one it holds
  ``replay_copies`` times more to the validator, each time on a raw gossipsub stream.
  py-libp2p forgets a message ~120 s after it saw it; a bench round lasts seconds, so the
  attacker clears the validator's seen-message cache before each replay to stand in for the
  wait. Before the fix the "wrong round" and "duplicate" refusals counted against the miners,
  who were banned.

Reported per attack (``compare``): the attacker's reward share (certified weight of senders
that are not the honest miners, every round carrying the same emission), the honest miners'
pay lost (their certified weight summed over the rounds, attacked over clean), per miner too,
the certified contributions per round, the rounds of finality stalled (per round, how much
later the slowest honest node held its model, measured from the round's start, attacked minus
clean, in rounds; the largest over the rounds), and the final validation loss ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from protocol.domain_types import PublicKey

ATTACKS = ("mqtt-flood", "replay")
TRANSPORT_OF = {"mqtt-flood": "mqtt", "replay": "libp2p"}
GOALS = {"attacker_reward_share": 0.01, "honest_pay_lost": 0.01, "finality_stall_rounds": 1}
ROOT = Path(__file__).resolve().parents[1]
"""The repository: where the flooder's own process runs."""
SLACK_ROUNDS = 4
"""Clock rounds a run may take beyond its own before it is cut (a stalled network)."""


@dataclass(frozen=True)
class NetScenario:
    """One small network and the attackers' strength."""

    rounds: int = 4
    miners: int = 3
    flood_burst: int = 5000
    """Fresh-key frames before genesis: more than a node's old table of senders (4096)."""
    flood_rate_per_s: float = 40.0
    """Fresh-key frames per second after that (~14/s sustained the lock-out)."""
    flood_lead_s: float = 6.0
    """Extra seconds before genesis in both runs of the flood, so its burst lands before round
    0. What the burst costs beyond the lock-out is time: every node here shares one process
    and core, and a node's MQTT client reads the burst's frames ahead of the miners' (one
    connection from the broker), so a burst landing mid-round delays that round here (a
    volumetric flood that broker accounts keep out in a deployment, see deploy/mosquitto)."""
    replay_copies: int = 4
    """Times every captured frame is sent again in each replay."""
    round_length: int | None = None
    """Seconds per round; None measures it on this machine (seedswarm.devnet.calibration)."""


@dataclass
class RunRecord:
    """What one run left behind."""

    weights: dict[str, float]
    """Certified weight per sender (hex key), summed over the rounds."""
    entries_per_round: list[int]
    honest_entries_per_round: list[int]
    finality_lag: list[float]
    """Per round: when the slowest honest node held its model, in rounds since the round began
    (at most 1: final within its own round)."""
    val_loss: float
    reached: int
    """Rounds the slowest honest node reached."""
    ledger_scores: dict[str, float]
    seconds: float
    counters: dict[str, Any] = field(default_factory=dict)


def _key(label: str) -> Any:
    from protocol.identity import NodeKey

    return NodeKey.from_bytes(hashlib.sha256(f"bench-netattack/{label}".encode()).digest())


@dataclass
class _Network:
    """The files and keys both runs of one attack share."""

    network: Any
    base: Path
    workdir: Path
    validator: Any
    miners: list[Any]

    @property
    def miner_keys(self) -> tuple[PublicKey, ...]:
        return tuple(k.public.raw for k in self.miners)

    def timeline(self) -> Any:
        from protocol.domain_types import Wei
        from protocol.membership import Membership, MembershipTimeline

        return MembershipTimeline.constant(
            Membership.of(list(self.miner_keys), [(self.validator.public.raw, Wei(1))]))


def prepare(scenario: NetScenario, workdir: Path) -> _Network:
    """The devnet genesis of `scenario` at `workdir`, its round length measured (or given)."""
    from seedswarm.devnet.calibration import cores, measure_round
    from seedswarm.devnet.devnet_genesis import network_config, write_base
    from seedswarm.devnet.spec import DevnetSpec
    from seedswarm.launch.settings import DEFAULT_WORK_FRACTION

    spec = DevnetSpec(miners=scenario.miners, validators=1, rounds=scenario.rounds)
    base = workdir / "base.safetensors"
    model_hash, _ = write_base(spec, base)
    length = scenario.round_length
    if length is None:
        cost = measure_round(network_config(spec, model_hash), base, spec.total_miners)
        length = cost.round_length(spec.total_miners + spec.validators, DEFAULT_WORK_FRACTION,
                                   cores())
    network = network_config(replace(spec, round_length=length), model_hash)
    miners = [_key(f"miner-{i}") for i in range(scenario.miners)]
    return _Network(network, base, workdir, _key("validator"), miners)


# -- transports -------------------------------------------------------------------------------


def _limits() -> Any:
    from adapters.transport.base import Limits

    return Limits(max_message_bytes=1 << 20)  # bundles carry many envelopes


def _mqtt(port: int, net: _Network) -> Callable[[Any], Any]:
    from adapters.transport.mqtt import MqttConfig, MqttTransport

    def make(key: Any) -> Any:
        return MqttTransport(MqttConfig(port=port), key=key, network_id=net.network.network_id,
                             limits=_limits())

    return make


def _libp2p(net: _Network) -> Callable[[Any], Any]:
    from adapters.transport.libp2p_host import Libp2pConfig
    from adapters.transport.libp2p_transport import Libp2pTransport

    def make(key: Any) -> Any:
        return Libp2pTransport(Libp2pConfig(key_seed=key.to_bytes()),
                               network_id=net.network.network_id, limits=_limits())

    return make


# -- the attackers ----------------------------------------------------------------------------


def _flood_frames(net: _Network, count: int) -> list[tuple[str, bytes]]:
    """`count` (MQTT topic, frame) pairs, each frame signed by a throw-away key of its own."""
    from adapters.transport.mqtt_wire import Auth, PublishEnvelope, SequenceCounter, seal
    from protocol.domain_types import ModelHash
    from protocol.identity import NodeKey
    from protocol.messages import Contribution
    from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS
    from protocol.signing import seal as seal_message

    network_id = net.network.network_id
    counter = SequenceCounter()
    out = []
    for index in range(count):
        key = NodeKey.generate()
        if index % 2:
            topic, data = TOPIC_BUNDLES, b"x"
        else:
            topic = TOPIC_CONTRIBUTIONS
            data = seal_message(Contribution(
                network_id=network_id, round_index=0, sender=key.public.raw, sequence=1,
                base_model_hash=ModelHash(net.network.base_checkpoint_digest), codec="zo",
                direction="gaussian", rank=1, block_counts=(), scale=1.0, codes=b"\x01\x02",
                compute_ms=1), key)
        mqtt_topic = f"seedswarm/{network_id}/t/{topic}"
        frame = seal(PublishEnvelope(Auth(key.public.raw, counter.next(), key.peer_id), data),
                     key, network_id=network_id, topic=mqtt_topic)
        out.append((mqtt_topic, frame))
    return out


async def _flood(port: int, frames: list[tuple[str, bytes]], burst: int, rate_per_s: float,
                 sent: list[int], workdir: Path) -> None:
    """`burst` of `frames` at once, then the rest at `rate_per_s` until cancelled. The
    attacker is a machine of its own: its frames are signed beforehand and sent by a process
    of its own (`python -m bench.incentives_network --flood FILE`), so neither its signing nor
    its client's loop takes the nodes' time."""
    import sys

    plan = workdir / "flood.frames"
    await asyncio.to_thread(_write_frames, plan, frames)
    count = workdir / "flood.sent"
    await asyncio.sleep(1.0)  # the nodes subscribe as their services start
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.incentives_network", "--flood", str(plan), "--port",
        str(port), "--burst", str(burst), "--rate", str(rate_per_s),
        cwd=ROOT)
    try:
        await process.wait()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        with contextlib.suppress(OSError, ValueError):
            sent[0] = int(count.read_text(encoding="utf-8"))


def _write_frames(plan: Path, frames: Sequence[tuple[str, bytes]]) -> None:
    with plan.open("wb") as out:
        for topic, frame in frames:
            raw = topic.encode()
            out.write(struct.pack(">HI", len(raw), len(frame)) + raw + frame)


def _read_frames(plan: Path) -> list[tuple[str, bytes]]:
    data = plan.read_bytes()
    frames = []
    at = 0
    while at < len(data):
        topic_len, frame_len = struct.unpack_from(">HI", data, at)
        at += 6
        topic = data[at:at + topic_len].decode()
        frames.append((topic, data[at + topic_len:at + topic_len + frame_len]))
        at += topic_len + frame_len
    return frames


async def flood_from(plan: Path, port: int, burst: int, rate_per_s: float) -> None:
    """The flooder's own process: send the frames `plan` holds (see `_flood`), writing how
    many it sent next to it."""
    import aiomqtt

    frames = await asyncio.to_thread(_read_frames, plan)
    count = plan.with_name("flood.sent")
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for index, (topic, frame) in enumerate(frames[:burst]):
            await client.publish(topic, frame, qos=0)
            if index % 100 == 0:
                await asyncio.sleep(0)  # let the client's socket drain
        count.write_text(str(min(burst, len(frames))), encoding="utf-8")
        step = max(1, int(rate_per_s / 4))
        for start in range(burst, len(frames), step):
            for topic, frame in frames[start:start + step]:
                await client.publish(topic, frame, qos=0)
            count.write_text(str(min(start + step, len(frames))), encoding="utf-8")
            await asyncio.sleep(0.25)


def _capture(attacker: Any, captured: list[Any]) -> None:
    """Keep every gossip frame the attacker's host accepts (the miners' own signed ones)."""
    attacker._node._accept = lambda _topic, message, *_: captured.append(message)


def _forget_seen(transport: Any) -> None:
    """Empty the host's seen-message cache: what py-libp2p does ~120 s after a message."""
    pubsub = transport._node._pubsub
    if pubsub is not None:
        pubsub.seen_messages.cache.clear()


async def _send_raw(sender: Any, to_peer: str, messages: Sequence[Any]) -> None:
    """Publish `messages` to `to_peer` on a fresh gossipsub stream of `sender`'s host, as a
    hostile peer writes whatever RPC it likes."""
    import trio
    from libp2p.custom_types import TProtocol
    from libp2p.peer.id import ID
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.utils.varint import encode_varint_prefixed

    node = sender._node
    rpc = rpc_pb2.RPC(publish=list(messages))

    async def write() -> None:
        host = node._require_host()
        stream = await host.new_stream(ID.from_base58(to_peer), [TProtocol(PROTOCOL_ID_V11)])
        await stream.write(encode_varint_prefixed(rpc.SerializeToString()))
        await trio.sleep(0.2)  # the receiver reads it before EOF
        await stream.close()

    await sender._require_bridge().call(write)


async def _replay(attacker: Any, victim: Any, captured: list[Any], copies: int,
                  period_s: float, sent: list[int]) -> None:
    while True:
        await asyncio.sleep(period_s)
        batch = list(captured)
        for _ in range(copies if batch else 0):
            _forget_seen(victim)  # each copy arrives as a message the victim has forgotten
            with contextlib.suppress(Exception):  # a refused stream is the victim's right
                await _send_raw(attacker, victim.peer_id, batch)
                sent[0] += len(batch)


# -- one run ----------------------------------------------------------------------------------


async def run_network(net: _Network, transport_kind: str, attack: str | None,
                      scenario: NetScenario, *, broker_port: int = 0,
                      run_dir: Path) -> RunRecord:
    """Run the network of `net` over `transport_kind` for `scenario.rounds` rounds, with
    `attack` (one of ATTACKS, or None for the clean run)."""
    from node.service.miner import MinerConfig, MinerService
    from node.service.produce import MinerProduce
    from protocol.rounds import RoundClock
    from runtime.model_state import ModelState
    from seedswarm.devnet.attack_miners import live_miner
    from training.work import WorkConfig
    from validator.scorer_store import scoring_certifier
    from validator.service.engine import ScoringEngine
    from validator.service.validator import ValidatorConfig, ValidatorService

    network = net.network
    rounds = scenario.rounds
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    make = _mqtt(broker_port, net) if transport_kind == "mqtt" else _libp2p(net)
    work = WorkConfig.of(network)
    timeline = net.timeline()
    keys = net.miner_keys
    vkey = net.validator
    stakes = ((vkey.public.raw, 1),)
    frames: list[tuple[str, bytes]] = []
    if attack == "mqtt-flood":  # signed beforehand, on the attacker's time
        duration = (rounds + SLACK_ROUNDS + 2) * network.round_length
        count = scenario.flood_burst + int(scenario.flood_rate_per_s * duration)
        frames = await asyncio.to_thread(_flood_frames, net, count)
    states = [await asyncio.to_thread(ModelState.from_base, network, net.base)
              for _ in range(len(net.miners) + 1)]
    lead = scenario.flood_lead_s if transport_kind == "mqtt" else 0.0
    genesis = time.time() + network.round_length + 2.0 + lead
    common: dict[str, Any] = {"network": network, "genesis_time": genesis,
                              "validators": stakes, "peers": (vkey.peer_id,),
                              "last_round": rounds}
    vstate = states.pop()
    engine = ScoringEngine(vstate, scoring_certifier(network, vkey, run_dir / "v"), timeline,
                           work)
    validator = ValidatorService(ValidatorConfig(state_dir=run_dir / "v", miners=keys, **common),
                                 vkey, make(vkey), engine, timeline=timeline)
    miners = []
    for i, key in enumerate(net.miners):
        produce = MinerProduce(live_miner("", key, work), timeline, work)
        miners.append(MinerService(MinerConfig(state_dir=run_dir / f"m{i}", **common),
                                   make(key), states.pop(), produce, timeline=timeline))
    services: list[Any] = [validator, *miners]
    clock = RoundClock(genesis, network.round_length, 0.6)
    reached_at: dict[int, float] = {}
    names = ["validator", *(f"miner-{i}" for i in range(len(miners)))]
    by_node: dict[str, dict[int, float]] = {name: {} for name in names}
    sent = [0]
    attacker = None
    started = time.perf_counter()
    for s in services:
        await s.transport.start()
        if transport_kind == "mqtt":
            s.transport.recognize_members(timeline.knows)  # as seedswarm.launch.compose does
    extra: list[Any] = []
    try:
        if transport_kind == "libp2p":
            hub = validator.transport.listen_addrs[0]
            for m in miners:  # a star around the validator
                transport: Any = m.transport
                await transport.connect(hub)
        if attack == "replay":
            from protocol.roundlog import TOPIC_CONTRIBUTIONS

            attacker = make(_key("replayer"))
            captured: list[Any] = []
            _capture(attacker, captured)  # before start: the host binds it then
            await attacker.start()
            await attacker.subscribe(TOPIC_CONTRIBUTIONS)
            for s in services:
                await attacker.connect(s.transport.listen_addrs[0])
            extra.append(_replay(attacker, validator.transport, captured,
                                 scenario.replay_copies, network.round_length / 2, sent))
        elif attack == "mqtt-flood":
            extra.append(_flood(broker_port, frames, scenario.flood_burst,
                                scenario.flood_rate_per_s, sent, run_dir))

        def slowest() -> int:
            return min(s.follower.replica.round_index for s in services)

        async def watch() -> None:
            while True:
                now = time.time()
                for r in range(1, slowest() + 1):
                    reached_at.setdefault(r, now)
                for name, s in zip(names, services, strict=True):
                    for r in range(1, s.follower.replica.round_index + 1):
                        by_node[name].setdefault(r, now)
                await asyncio.sleep(0.05)

        limit = genesis - time.time() + (rounds + SLACK_ROUNDS) * network.round_length
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit), asyncio.TaskGroup() as group:
                tasks = [group.create_task(s.run()) for s in services]
                tasks += [group.create_task(job) for job in (*extra, watch())]
                while slowest() < rounds:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                for r in range(1, rounds + 1):
                    reached_at.setdefault(r, time.time())
                for task in tasks:
                    task.cancel()
    finally:
        for job in extra:
            job.close()  # never started when the run failed before the task group
        for s in services:
            with contextlib.suppress(Exception):
                await s.transport.stop()
        if attacker is not None:
            with contextlib.suppress(Exception):
                await attacker.stop()
    length = network.round_length

    def since_start(moment: float | None, r: int) -> float:
        # a round never final counts as final one round after the run was cut
        at = time.time() + length if moment is None else moment
        return round((at - clock.round_start(r)) / length, 3)

    lag = [since_start(reached_at.get(r + 1), r) for r in range(rounds)]
    record = _record(validator, miners, keys, rounds, lag, time.perf_counter() - started,
                     sent[0], attack, transport_kind)
    for name, s in zip(names, services, strict=True):
        for r in range(1, s.follower.replica.round_index + 1):
            by_node[name].setdefault(r, time.time())
    record.counters["finality_lag_by_node"] = {
        name: [since_start(got.get(r + 1), r) for r in range(rounds)]
        for name, got in by_node.items()}
    return record


def _record(validator: Any, miners: Sequence[Any], keys: Sequence[bytes], rounds: int,
            lag: list[float], seconds: float, sent: int, attack: str | None,
            transport_kind: str) -> RunRecord:
    weights: dict[str, float] = {}
    entries: list[int] = []
    honest_entries: list[int] = []
    for r in range(rounds):
        raw = validator.follower.store.get(r)
        certified = [] if raw is None else \
            validator.follower.open_entry(raw).bundle.certificate.message.entries
        entries.append(len(certified))
        honest_entries.append(sum(1 for e in certified if e.sender in keys))
        for e in certified:
            weights[e.sender.hex()] = weights.get(e.sender.hex(), 0.0) + e.weight_ppb / 1e9
    scores: dict[str, float] = {}
    for record in validator.ledger.epochs.values():
        for k, w in record.scores.items():
            scores[k] = scores.get(k, 0.0) + w
    now = validator.now()
    counters: dict[str, Any] = {
        "attack_messages_sent": sent,
        "validator_gate": validator.gate.snapshot(),
        "validator_pool_refused": dict(validator.pool.refused),
        "honest_miners_banned": sum(validator.gate.is_banned(m.transport.peer_id, now)
                                    for m in miners),
        "transport": transport_kind,
    }
    counters["transport_stats"] = {
        ("validator" if s is validator else f"miner-{i - 1}"): _nonzero(s.transport.stats)
        for i, s in enumerate([validator, *miners])}
    return RunRecord(
        weights=weights, entries_per_round=entries, honest_entries_per_round=honest_entries,
        finality_lag=lag, val_loss=validator.engine.state.validation_loss(),
        reached=min(s.follower.replica.round_index for s in (validator, *miners)),
        ledger_scores=scores, seconds=seconds, counters=counters)


def _nonzero(stats: Any) -> dict[str, int]:
    """A transport's deliveries and the drops it counted."""
    snapshot = stats.snapshot()
    return {k: v for k, v in snapshot.items() if k == "delivered" or (k.startswith("dropped")
                                                                     and v)}


# -- comparison -------------------------------------------------------------------------------


def compare(clean: RunRecord, attacked: RunRecord, keys: Sequence[bytes]) -> dict[str, Any]:
    """The attack's figures: attacked run against the clean run of the same network."""
    honest = {k.hex() for k in keys}
    rounds = len(clean.entries_per_round)

    def honest_pay(run: RunRecord) -> float:
        return sum(w for k, w in run.weights.items() if k in honest)

    others = sum(w for k, w in attacked.weights.items() if k not in honest)
    clean_pay = honest_pay(clean)
    per_miner = {k.hex()[:12]: 1.0 - attacked.weights.get(k.hex(), 0.0) / clean.weights[k.hex()]
                 if clean.weights.get(k.hex()) else 0.0 for k in keys}
    return {
        "attacker_reward_share": others / rounds,
        "honest_pay_lost": 1.0 - honest_pay(attacked) / clean_pay if clean_pay else 1.0,
        "honest_pay_lost_per_miner": per_miner,
        "finality_stall_rounds": round(max(0.0, *(a - c for a, c in zip(
            attacked.finality_lag, clean.finality_lag, strict=True))), 3),
        "val_loss_ratio": attacked.val_loss / clean.val_loss,
        "clean": _record_json(clean),
        "attacked": _record_json(attacked),
    }


def _record_json(run: RunRecord) -> dict[str, Any]:
    return {
        "certified_contributions_per_round": run.entries_per_round,
        "honest_contributions_per_round": run.honest_entries_per_round,
        "finality_lag_rounds": run.finality_lag, "rounds_reached": run.reached,
        "val_loss": run.val_loss, "certified_weight": run.weights,
        "ledger_scores": run.ledger_scores, "seconds": run.seconds, **run.counters,
    }


def meets_goals(figures: dict[str, Any]) -> bool:
    return (figures["attacker_reward_share"] <= GOALS["attacker_reward_share"]
            and figures["honest_pay_lost"] <= GOALS["honest_pay_lost"]
            and figures["finality_stall_rounds"] <= GOALS["finality_stall_rounds"])


async def _attack_pair(attack: str, scenario: NetScenario, workdir: Path) -> dict[str, Any]:
    net = await asyncio.to_thread(prepare, scenario, workdir)
    kind = TRANSPORT_OF[attack]
    if kind != "mqtt":
        clean = await run_network(net, kind, None, scenario, run_dir=workdir / "clean")
        attacked = await run_network(net, kind, attack, scenario, run_dir=workdir / "attacked")
    else:
        from adapters.transport.mqtt_broker import MosquittoBroker

        broker = MosquittoBroker()
        await broker.start()
        try:
            clean = await run_network(net, kind, None, scenario, broker_port=broker.port,
                                      run_dir=workdir / "clean")
            attacked = await run_network(net, kind, attack, scenario, broker_port=broker.port,
                                         run_dir=workdir / "attacked")
        finally:
            await broker.stop()
    figures = compare(clean, attacked, net.miner_keys)
    figures["round_length_s"] = net.network.round_length
    figures["rounds"] = scenario.rounds
    figures["transport"] = kind
    return figures


def run_attack(attack: str, scenario: NetScenario, workdir: Path | None = None,
               ) -> dict[str, Any]:
    """Both runs of `attack` on a fresh network; its figures (see `compare`)."""
    if workdir is not None:
        return asyncio.run(_attack_pair(attack, scenario, workdir))
    with tempfile.TemporaryDirectory(prefix=f"seedswarm-{attack}-") as tmp:
        return asyncio.run(_attack_pair(attack, scenario, Path(tmp)))


def run_all(quick: bool, attacks: Sequence[str] = ATTACKS) -> dict[str, dict[str, Any]]:
    """bench.incentives' network attackers: each attack's figures."""
    scenario = NetScenario(rounds=4 if quick else 8)
    return {attack: run_attack(attack, scenario) for attack in attacks}


def add_rows(table: Any, figures: dict[str, dict[str, Any]], *, shares: bool = True) -> None:
    """bench.incentives' table rows for the network attackers (`shares`: the reward share
    rows too, which bench.incentives prints with the other attackers')."""
    from bench.incentives import _met

    for attack, f in figures.items():
        share, lost, stall = (f["attacker_reward_share"], f["honest_pay_lost"],
                              f["finality_stall_rounds"])
        indent = "  " if shares else ""
        if shares:
            table.add_row(f"reward share: {attack}", f"{share:.4f}", "<= 0.01",
                          _met(share <= 0.01))
        table.add_row(f"{indent}honest pay lost to {attack}", f"{lost:.4f}", "<= 0.01",
                      _met(lost <= 0.01))
        table.add_row(f"{indent}finality stalled by {attack} (rounds)", f"{stall:.2f}", "<= 1",
                      _met(stall <= 1))
        table.add_row(f"{indent}val loss ratio under {attack}", f"{f['val_loss_ratio']:.4f}",
                      "", "")


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=NetScenario.rounds)
    parser.add_argument("--attack", choices=ATTACKS, action="append")
    parser.add_argument("--flood", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--burst", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood is not None:  # the flooder's own process (see _flood)
        asyncio.run(flood_from(args.flood, args.port, args.burst, args.rate))
        return {}
    import torch

    torch.set_num_threads(1)
    scenario = NetScenario(rounds=args.rounds)
    figures = {a: run_attack(a, scenario) for a in (args.attack or ATTACKS)}
    table = Table(title="seedswarm incentives: network attackers")
    for column in ("metric", "value", "goal", "met"):
        table.add_column(column)
    add_rows(table, figures)
    console = Console()
    console.print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"network_attackers": figures}, indent=2) + "\n",
                             encoding="utf-8")
        console.print(f"JSON written to {args.json}")
    return figures


if __name__ == "__main__":
    main()
