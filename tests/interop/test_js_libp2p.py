"""Issue 15 (6): a real js-libp2p peer (npm `libp2p` + `@chainsafe/libp2p-gossipsub`, see
tests/interop/js) joins a live seedswarm network over libp2p.

One validator and two honest miners run in this process over real libp2p hosts (TCP, Noise,
Yamux, GossipSub), certifying rounds; the js peer dials the validator and subscribes to the
network's topics. It must receive every certified round's bundle byte for byte, id each
message exactly as the Python nodes do (SHA-256 of the data, so a copy it publishes again is
no new message to them), and its garbage (malformed, unsigned, oversized, a miner's genuine
contribution for a past round) must be refused and counted while the nodes stay up, ban no
honest peer and keep certifying rounds.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.transport.libp2p_host import Libp2pConfig
from adapters.transport.libp2p_transport import Libp2pTransport
from adapters.transport.stats import DropReason
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.domain_types import ModelHash, Wei
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS
from protocol.signing import seal
from runtime.model_state import ModelState
from runtime.peergate import GatePolicy
from seedswarm.devnet.attack_miners import live_miner
from seedswarm.devnet.spec import DevnetSpec
from tests.interop.js_peer import JsPeer, modules_missing, node_missing
from tests.services.harness import LIMITS, limit_s, measured_network, start_time
from tests.services.harness import key as _key
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

pytestmark = [pytest.mark.network, pytest.mark.timeout(300)]

ROUNDS = 4
ATTACK_ROUND = 1
"""The js peer attacks once it holds this round's bundle; rounds after it must still certify."""
MINERS = [_key("interop-miner-0"), _key("interop-miner-1")]
LEADER = _key("interop-validator")
OVERSIZED = LIMITS.max_message_bytes + 1000


class _Recording(Libp2pTransport):
    """A node's libp2p transport that keeps the digest of everything it publishes and of
    every gossip message its host delivers (its own publishes included), per topic."""

    def __init__(self, key: NodeKey, network: NetworkConfig, bootstrap: tuple[str, ...]) -> None:
        super().__init__(Libp2pConfig(key_seed=key.to_bytes(), bootstrap=bootstrap),
                         network_id=network.network_id, limits=LIMITS)
        self.published: list[tuple[str, bytes]] = []
        self.delivered: Counter[tuple[str, bytes]] = Counter()

    async def _send_publish(self, topic: str, data: bytes) -> None:
        self.published.append((topic, hashlib.sha256(data).digest()))
        await super()._send_publish(topic, data)

    def _on_gossip(self, gossip_topic: str, data: bytes, from_peer: str, forwarder: str) -> None:
        self.delivered[gossip_topic, hashlib.sha256(data).digest()] += 1
        super()._on_gossip(gossip_topic, data, from_peer, forwarder)

    def seen(self, message_id: bytes) -> bool:
        """Whether the host's GossipSub seen-cache holds `message_id`."""
        pubsub = self._node._pubsub
        assert pubsub is not None, "the host is not running"
        return bool(pubsub.seen_messages.has(message_id))


def _stale_contribution(network: NetworkConfig, miner: NodeKey, round_index: int) -> bytes:
    """A contribution genuinely signed by `miner`, for a round long certified: what a third
    party replaying the miner's old messages sends (the miner must not pay for it)."""
    message = Contribution(
        network_id=network.network_id, round_index=round_index, sender=miner.public.raw,
        sequence=1, base_model_hash=ModelHash(bytes(32)), codec="zo",
        direction="gaussian", rank=1, block_counts=(), scale=1.0, codes=b"\x01\x02",
        compute_ms=1,
    )
    return seal(message, miner)


async def _until(predicate: Callable[[], object], what: str, limit: float) -> None:
    try:
        async with asyncio.timeout(limit):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}") from None


class _Run:
    """The network, the js peer and what the attack observed."""

    def __init__(self, network: NetworkConfig, base: Path, tmp: Path) -> None:
        self.network, self.base, self.tmp = network, base, tmp
        self.validator: ValidatorService | None = None
        self.miners: list[MinerService] = []
        self.transports: list[_Recording] = []
        self.js: JsPeer | None = None
        self.dedup_checked: bytes = b""
        self.attack_done = False
        self.rounds_at_attack = 0

    def topic(self, name: str) -> str:
        return f"/seedswarm/{self.network.network_id}/{name}"

    async def run(self) -> None:
        network, base, tmp = self.network, self.base, self.tmp
        work = WorkConfig.of(network)
        keys = tuple(k.public.raw for k in MINERS)
        common = {"network": network, "genesis_time": start_time(network),
                  "peers": (LEADER.peer_id,), "last_round": ROUNDS}
        hub = _Recording(LEADER, network, ())
        await hub.start()
        self.transports = [hub]
        self.transports += [_Recording(k, network, hub.listen_addrs) for k in MINERS]
        vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, Wei(1)),),
                                  miners=keys, **common)  # type: ignore[arg-type]
        self.validator = ValidatorService(
            vconfig, LEADER, hub, ScoringEngine(ModelState.from_base(network, base),
                                                scoring_certifier(network, LEADER, tmp / "v"),
                                                keys, work))
        for i, (key, transport) in enumerate(zip(MINERS, self.transports[1:], strict=True)):
            config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, Wei(1)),),
                                 **common)  # type: ignore[arg-type]
            produce = MinerProduce(live_miner("", key, work), keys, work)
            self.miners.append(MinerService(config, transport, ModelState.from_base(network, base),
                                            produce))
        services: list[MinerService | ValidatorService] = [self.validator, *self.miners]
        try:
            async with JsPeer() as js:
                self.js = js
                for topic in (TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS):
                    await js.call("subscribe", topic=self.topic(topic))
                await js.call("dial", addr=hub.listen_addrs[0])
                for t in self.transports[1:]:
                    await t.start()
                async with asyncio.timeout(limit_s(network, ROUNDS)), asyncio.TaskGroup() as g:
                    tasks = [g.create_task(s.run()) for s in services]
                    failed = [g.create_task(t.wait_failed()) for t in self.transports]
                    await self._attack()
                    await _until(lambda: all(s.follower.replica.round_index >= ROUNDS
                                             for s in services), f"round {ROUNDS}",
                                 limit_s(network, ROUNDS))
                    assert not any(f.done() for f in failed), "a libp2p host died"
                    for task in tasks + failed:
                        task.cancel()
        finally:
            for t in self.transports:
                await t.stop()

    async def _attack(self) -> None:
        js, hub, validator = self.js, self.transports[0], self.validator
        assert js is not None and validator is not None
        bundles = self.topic(TOPIC_BUNDLES)
        await _until(lambda: validator.follower.replica.round_index > ATTACK_ROUND,
                     f"round {ATTACK_ROUND} certified", limit_s(self.network, ATTACK_ROUND + 1))
        await _until(lambda: js.received(bundles), "a bundle at the js peer", 20.0)
        self.rounds_at_attack = validator.follower.replica.round_index

        # (2) one message, one id on both sides: the js id is in the publisher's seen-cache;
        # js-libp2p will not publish the same data again (same id); and the same data sent in
        # a fresh message signed by the js peer (its key, a new seqno) is no new message to
        # the validator that published it (with ids of key or peer id + seqno it would be)
        first = js.received(bundles)[0]
        assert hub.seen(bytes.fromhex(first.msg_id))
        with pytest.raises(RuntimeError, match="Duplicate"):
            await js.call("republish", topic=bundles, msg_id=first.msg_id)
        self.dedup_checked = bytes.fromhex(first.sha256)
        await js.call("resend", topic=bundles, msg_id=first.msg_id, peer=hub.peer_id)

        # (3) garbage, from a peer the network never registered
        contributions = self.topic(TOPIC_CONTRIBUTIONS)
        await js.call("publish", topic=contributions, data_hex=b"\x01 no envelope at all".hex())
        stale = _stale_contribution(self.network, MINERS[0], 0)
        await js.call("publish", topic=contributions, data_hex=stale.hex())
        await js.call("publish_unsigned", topic=contributions, peer=hub.peer_id,
                      data_hex=b"unsigned".hex())
        await js.call("publish", topic=contributions, data_hex=bytes(OVERSIZED).hex(),
                      timeout_s=60.0)
        pool, stats = validator.pool, hub.stats
        await _until(lambda: pool.refused["malformed"] >= 1, "a malformed refusal", 30.0)
        await _until(lambda: pool.refused["wrong_round"] >= 1, "a wrong-round refusal", 30.0)
        await _until(lambda: stats.dropped(DropReason.BAD_SIGNATURE) >= 1,
                     "the unsigned message to be counted", 30.0)
        await _until(lambda: stats.dropped(DropReason.OVERSIZED_INBOUND) >= 1,
                     "the oversized message to be counted", 30.0)
        # enough fake bundles to earn a ban: the validator relays them to the miners before it
        # can judge them, and the miners must blame their publisher, never the validator
        for index in range(GatePolicy().max_invalid + 4):
            await js.call("publish", topic=bundles, data_hex=(b"not a bundle %d" % index).hex())
        await _until(lambda: validator.gate.is_banned(js.peer_id, validator.now()),
                     "the validator to ban the js peer", 30.0)
        self.attack_done = True


@pytest.fixture(scope="module")
def tooling() -> None:
    """Skip without Node.js; with it, the js peer's packages must be installed (CI's
    `make test` installs them), so a broken install fails instead of hiding behind a skip."""
    reason = node_missing()
    if reason is not None:
        pytest.skip(reason)
    reason = modules_missing()
    if reason is not None:
        pytest.fail(reason)


def test_js_libp2p_peer_receives_rounds_byte_for_byte_and_its_garbage_harms_nobody(
    tmp_path: Path, tooling: None
) -> None:
    spec = DevnetSpec(miners=len(MINERS), validators=1, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    run = _Run(measured_network(spec, base), base, tmp_path)
    asyncio.run(run.run())
    validator, js, hub = run.validator, run.js, run.transports[0]
    assert validator is not None and js is not None and run.attack_done

    # (1) every bundle the validator published reached the js peer byte for byte
    bundles = run.topic(TOPIC_BUNDLES)
    published = [digest for topic, digest in hub.published if topic == TOPIC_BUNDLES]
    assert len(published) >= ROUNDS
    by_digest = {bytes.fromhex(m.sha256): m for m in js.received(bundles)}
    assert set(published) <= set(by_digest), "the js peer missed a published bundle"
    # (2) and js-libp2p's id of each is the Python nodes' id: the SHA-256 of the data
    for digest in published:
        assert bytes.fromhex(by_digest[digest].msg_id) == digest
        assert by_digest[digest].from_peer == hub.peer_id
    for r in range(ROUNDS):  # what the network certified is among what the js peer holds
        entry = validator.follower.store.get(r)
        assert entry is not None, f"round {r} was not certified"
        bundle = validator.follower.open_entry(entry).bundle
        assert hashlib.sha256(bundle.encode()).digest() in by_digest
    # the copy the js peer published again was delivered to no Python node a second time
    for t in run.transports:
        assert t.delivered[bundles, run.dedup_checked] <= 1

    # (3) the garbage was refused and counted; nobody honest was banned; rounds went on
    pool = validator.pool
    assert pool.refused["malformed"] >= 1
    assert pool.refused["wrong_round"] >= 1
    assert hub.stats.dropped(DropReason.BAD_SIGNATURE) >= 1
    assert hub.stats.dropped(DropReason.OVERSIZED_INBOUND) >= 1
    gate, now = validator.gate, validator.now()
    for miner in MINERS:
        assert not gate.is_banned(miner.peer_id, now)
        assert "wrong_round" not in gate.refused_by(miner.peer_id)  # the replay is not its fault
    for service in run.miners:
        relayed = sum(v for k, v in service.gate.snapshot().items() if k.startswith("refused_"))
        assert relayed >= GatePolicy().max_invalid  # enough to ban whoever they blamed
        assert not service.gate.is_banned(LEADER.peer_id, now)
        assert not any(service.gate.is_banned(m.peer_id, now) for m in MINERS)
    # the fake bundles: refused by the validator's gate beyond the contributions it refused;
    # their publisher is banned, the validator that relayed them to the miners is not
    gate_refused = sum(v for k, v in validator.gate.snapshot().items() if k.startswith("refused_"))
    assert gate_refused > sum(pool.refused.values())
    assert gate.is_banned(js.peer_id, now)
    assert run.rounds_at_attack < ROUNDS
    for r in range(run.rounds_at_attack, ROUNDS):  # rounds after the attack still pay both miners
        entry = validator.follower.store.get(r)
        assert entry is not None
        senders = {e.sender for e in
                   validator.follower.open_entry(entry).bundle.certificate.message.entries}
        assert senders == {m.public.raw for m in MINERS}, f"round {r} left out an honest miner"
