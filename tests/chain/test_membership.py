"""Membership from the Registry: keys and stakes, epoch snapshots, refresh, the devnet node path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from adapters.chain.backends import advance_time, chain_time, is_embedded, set_time
from adapters.chain.chain_errors import ChainError
from adapters.chain.registry_contract import RegistryClient
from adapters.chain.registry_membership import (
    EpochMembership,
    is_settled,
    read_membership,
    watch_membership,
)
from protocol.membership import Membership, MembershipError, MembershipSchedule
from protocol.netconfig import build_network
from seedswarm.launch.join_bundle import ChainInfo, GenesisInfo, JoinBundle, PeerInfo
from seedswarm.launch.membership_source import ChainMembership, resolve_membership, resolve_timeline
from seedswarm.launch.node_plan import NodePlan
from seedswarm.launch.settings import NodeSettings
from tests.chain.harness import ETH, Net, make_net, node_key

pytestmark = pytest.mark.chain


def reader(net: Net) -> RegistryClient:
    """A registry client with no account, as a miner node builds it."""
    return RegistryClient.read_only(net.w3, net.suite.deployment.registry)


def expected(net: Net, stakes: tuple[int, ...] = (ETH, 2 * ETH, 3 * ETH)) -> Membership:
    miners = tuple(sorted(node_key(2, i) for i in range(len(net.miners))))
    validators = tuple(sorted((node_key(1, i), s) for i, s in enumerate(stakes)))
    return Membership(miners, validators)


def settle(w3: Web3, seconds: int = 5) -> int:
    """Move chain time on and return a snapshot time that everything so far precedes."""
    return advance_time(w3, seconds)


def test_reads_registered_keys_and_stakes(w3: Web3) -> None:
    net = make_net(w3, miners=3)
    registry = reader(net)
    at = settle(w3)
    assert read_membership(registry) == expected(net)
    assert read_membership(registry, at) == expected(net)
    assert read_membership(registry).total_stake == 6 * ETH
    with pytest.raises(ChainError, match="read-only"):
        registry.register_miner(node_key(9, 9), ETH)


def test_snapshot_ignores_later_changes_whatever_block_reads_it(w3: Web3) -> None:
    net = make_net(w3, miners=2)
    registry = reader(net)
    at = settle(w3)
    before = read_membership(registry, at)
    advance_time(w3, 5)
    newcomer = net.join()
    tx = newcomer.registry.register_miner(node_key(2, 7), ETH)
    assert int(w3.eth.get_block(tx.block_number)["timestamp"]) > at
    net.validators[0].registry.add_stake(4 * ETH)
    net.join().registry.register_validator(node_key(1, 9), 2 * ETH)
    net.miners[1].registry.deregister()

    assert read_membership(registry, at) == before == expected(net)
    after = read_membership(registry, settle(w3))
    assert after == read_membership(registry)
    assert after.miners == tuple(sorted([node_key(2, 0), node_key(2, 7)]))
    assert after.validators == tuple(sorted([
        (node_key(1, 0), 5 * ETH), (node_key(1, 1), 2 * ETH), (node_key(1, 2), 3 * ETH),
        (node_key(1, 9), 2 * ETH)]))
    assert is_settled(registry, at) and not is_settled(registry, chain_time(w3) + 100)


def test_deregistered_validator_drops_out(w3: Web3) -> None:
    net = make_net(w3, miners=1)
    registry = reader(net)
    at = settle(w3)
    net.validators[1].registry.deregister()
    later = settle(w3)
    assert (node_key(1, 1), 2 * ETH) in read_membership(registry, at).validators
    for membership in (read_membership(registry, later), read_membership(registry)):
        assert [k for k, _ in membership.validators] == [node_key(1, 0), node_key(1, 2)]
        assert membership.total_stake == 4 * ETH


def test_a_reregistered_account_keeps_its_old_key_in_old_snapshots(w3: Web3) -> None:
    net = make_net(w3, miners=2)
    registry = reader(net)
    at = settle(w3)
    net.miners[0].registry.deregister()
    net.miners[0].registry.register_miner(node_key(3, 0), ETH)
    later = settle(w3)
    assert node_key(2, 0) in read_membership(registry, at).miners
    assert read_membership(registry, later).miners == tuple(sorted([node_key(2, 1),
                                                                    node_key(3, 0)]))


def test_ordering_is_canonical_whatever_the_registration_order(w3: Web3) -> None:
    net = make_net(w3, miners=0, validator_stakes=())
    keys = [bytes([0xF0 - i]) + bytes(31) for i in range(4)]  # registered in descending order
    for i, key in enumerate(keys):
        net.join().registry.register_validator(key, (i + 1) * ETH)
        net.join().registry.register_miner(bytes([0x40 - i]) + key[1:], ETH)
    membership = read_membership(reader(net), settle(w3))
    assert list(membership.miners) == sorted(membership.miners)
    assert [k for k, _ in membership.validators] == sorted(keys)
    assert membership == Membership.of(reversed(membership.miners), membership.validators[::-1])
    with pytest.raises(MembershipError, match="sorted"):
        Membership(membership.miners[::-1], membership.validators)
    with pytest.raises(MembershipError, match="32-byte"):
        Membership((b"short",), ())


def test_schedule_matches_the_contract(w3: Web3) -> None:
    net = make_net(w3, miners=0, validator_stakes=(ETH,))
    registry = reader(net)
    schedule = MembershipSchedule.from_params(registry.network_params())
    assert schedule.epoch_duration == 60 and schedule.epoch_length == 6
    for epoch in (0, 1, 5):
        assert schedule.epoch_start(epoch) == registry.epoch_start(epoch)
    genesis = schedule.genesis_time
    assert [schedule.snapshot_time(r) for r in (0, 5, 6, 13)] == [
        genesis, genesis, genesis + 60, genesis + 120]
    assert schedule.epoch_at(genesis - 10) == 0 and schedule.epoch_at(genesis + 61) == 1
    assert [schedule.first_round(e) for e in (0, 2)] == [0, 12]


class Stop(Exception):
    """Ends a watch loop from inside its sleep."""


def test_watch_reports_changes_at_epoch_boundaries(w3: Web3) -> None:
    net = make_net(w3, miners=2)
    registry = reader(net)
    schedule = MembershipSchedule.from_params(registry.network_params())

    def next_epoch() -> None:
        set_time(w3, schedule.epoch_start(schedule.epoch_at(chain_time(w3)) + 1) + 1)

    next_epoch()  # the harness registers after genesis: start from a snapshot that has them
    start = schedule.epoch_at(chain_time(w3))
    current = read_membership(registry, schedule.epoch_start(start))
    assert current == expected(net)

    steps = [
        lambda: net.join().registry.register_miner(node_key(2, 5), ETH),  # lands in start+1
        lambda: net.validators[2].registry.deregister(),  # lands in start+2
        lambda: None,
    ]
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if not steps:
            raise Stop
        next_epoch()
        steps.pop(0)()

    seen: list[EpochMembership] = []
    with pytest.raises(Stop):
        asyncio.run(watch_membership(lambda at: read_membership(registry, at),
                                     lambda: chain_time(w3), schedule, seen.append,
                                     current=current, sleep=sleep))
    assert [s.epoch for s in seen] == [start + 2, start + 3]
    assert [s.first_round for s in seen] == [6 * (start + 2), 6 * (start + 3)]
    assert node_key(2, 5) in seen[0].membership.miners
    assert len(seen[0].membership.validators) == 3
    assert [k for k, _ in seen[1].membership.validators] == [node_key(1, 0), node_key(1, 1)]
    assert seen[1].snapshot_time == schedule.epoch_start(start + 3)
    assert all(1.0 <= d <= 30.0 for d in delays)


def test_watch_waits_for_genesis_and_survives_chain_errors() -> None:
    schedule = MembershipSchedule(genesis_time=1_000, round_length=10, epoch_length=2)
    clock = iter([900, 990, 1_000, 1_005])
    failures = [ChainError("node down")]
    reads: list[int] = []

    def chain_now() -> int:
        return next(clock)

    def read(at: int) -> Membership:
        if failures:
            raise failures.pop()
        reads.append(at)
        return Membership.of([bytes(32)], [(bytes([1]) * 32, 5)])

    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 4:
            raise Stop

    seen: list[EpochMembership] = []
    with pytest.raises(Stop):
        asyncio.run(watch_membership(read, chain_now, schedule, seen.append, sleep=sleep))
    # 900: before genesis, nothing to read yet (sleeps out the rest, capped); 990: still early;
    # 1000: genesis settled but the read fails (retry after poll_s); 1005: read and reported.
    assert delays == [30.0, 10.0, 1.0, 15.0]
    assert reads == [1_000] and [s.epoch for s in seen] == [0]


# -- the devnet node path ----------------------------------------------------------------------


@pytest.fixture
def rpc_url(w3: Web3) -> Iterator[str]:
    """The chain over JSON-RPC, as node processes reach it (embedded: the devnet's server)."""
    if not is_embedded(w3):
        yield str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        return
    from adapters.chain.embedded_rpc import EmbeddedRpcServer

    server = EmbeddedRpcServer(w3).start()
    try:
        yield server.url
    finally:
        server.stop()


def node_plan(tmp_path: Path, rpc_url: str, net: Net) -> NodePlan:
    """A node whose network file names `net`'s deployment on the chain at `rpc_url`."""
    d = net.suite.deployment
    network = build_network("membership-test", bytes(32), task="synthetic", trainable="lora:4",
                            miners=3)
    bundle = JoinBundle(
        network=network, genesis=GenesisInfo(time=0.0, model_hash=network.base_checkpoint_hash),
        chain=ChainInfo(url=rpc_url, chain_id=d.chain_id, token=d.token, registry=d.registry,
                        incentives=d.incentives),
        peers=PeerInfo(transport="mqtt", broker="mqtt://127.0.0.1:1883"),
    )
    bundle.save(tmp_path / "network.toml")
    settings = NodeSettings(role="miner", network=tmp_path / "network.toml",
                            keystore=tmp_path / "keys", state_dir=tmp_path / "state")
    return NodePlan.load(settings)


def test_a_node_takes_membership_from_the_registry_its_network_file_names(
    w3: Web3, rpc_url: str, tmp_path: Path
) -> None:
    net = make_net(w3, miners=3)
    plan = node_plan(tmp_path, rpc_url, net)
    # The harness registers after genesis: epoch 0 has nobody, epoch 1 everybody.
    assert resolve_membership(plan) == Membership((), ())
    set_time(w3, net.suite.registry.epoch_start(1) + 1)
    membership = resolve_membership(plan)
    assert membership == expected(net)
    source = ChainMembership.connect(plan.chain_url, plan.deployment)
    snapshot = source.current()
    assert snapshot.epoch == source.schedule.epoch_at(source.chain_now())
    assert snapshot.membership == membership


def test_a_node_started_late_reads_the_same_timeline_as_one_started_early(
    w3: Web3, rpc_url: str, tmp_path: Path
) -> None:
    """A miner registers while the network runs: the node that was running (fed each settled
    epoch) and a node that starts afterwards (seeded from its replica's epoch) agree on the
    table of every round, and the newcomer is in force from its epoch's first round only."""
    net = make_net(w3, miners=2)
    settings = node_plan(tmp_path, rpc_url, net)
    registry = net.suite.registry
    set_time(w3, registry.epoch_start(1) + 1)
    early, source = resolve_timeline(settings, 0)
    assert source is not None
    schedule = source.schedule
    assert early.at(0) == Membership((), ()) and early.at(6) == expected(net)

    newcomer = node_key(2, 9)
    net.join().registry.register_miner(newcomer, ETH)  # during epoch 1: in force from epoch 2
    set_time(w3, registry.epoch_start(2) + 1)

    async def feed_once() -> None:  # the running node's refresh task, for one pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(source.feed(early), timeout=3.0)

    asyncio.run(feed_once())
    late, _ = resolve_timeline(settings, 0)  # a node restarting from round 0 now
    resumed, _ = resolve_timeline(settings, 7)  # one whose replica is in epoch 1
    rounds = range(3 * schedule.epoch_length)
    assert [early.at(r) for r in rounds] == [late.at(r) for r in rounds]
    assert [early.at(r) for r in rounds[6:]] == [resumed.at(r) for r in rounds[6:]]
    assert all(newcomer not in early.miners_at(r) for r in range(12))
    assert newcomer in early.miners_at(12) and newcomer in late.miners_at(17)
    assert early.at(12).validators == expected(net).validators
