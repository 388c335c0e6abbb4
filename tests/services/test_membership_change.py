"""Membership changes while the network runs: every node judges each round by that round's table.

Pure part: an endorsement book on a timeline counts a validator added from round N for rounds
>= N only. Live part (real services over the in-memory transport): one validator and two miners
from round 0; from round 2 on a new miner and a second validator (holding most of the stake)
join. The newcomer, which believes itself registered from round 0, is refused by the pool
before round 2 and certified from round 2; the new validator's vote is needed from round 2;
every replica ends on one model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.errors import MessageRejected, RejectReason
from protocol.finality import EndorsementBook
from protocol.identity import NodeKey
from protocol.membership import Membership, MembershipTimeline
from protocol.messages import CertificateEndorsement, RoundCertificate
from protocol.netconfig import NetworkConfig
from protocol.signing import message_digest, seal
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import live_miner
from seedswarm.devnet.spec import DevnetSpec
from tests.services.harness import key as _key
from tests.services.harness import (
    limit_s,
    measured_network,
    run_until_round,
    start_time,
    transports,
)
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

NET = "membership-change"
JOIN = 2
ROUNDS = 4


FIRST, SECOND = _key("validator-0"), _key("validator-1")
MINERS = [_key(f"miner-{i}") for i in range(2)]
NEWCOMER = _key("newcomer")


def _before() -> Membership:
    return Membership.of([k.public.raw for k in MINERS], [(FIRST.public.raw, 2)])


def _after() -> Membership:
    return Membership.of([k.public.raw for k in [*MINERS, NEWCOMER]],
                         [(FIRST.public.raw, 2), (SECOND.public.raw, 3)])


def _timeline() -> MembershipTimeline:
    return MembershipTimeline([(0, _before()), (JOIN, _after())])


# -- pure: finality on a timeline -------------------------------------------------------------


def _endorsement(key: NodeKey, cert: RoundCertificate) -> bytes:
    return seal(CertificateEndorsement(network_id=NET, round_index=cert.round_index,
                                       validator=key.public.raw, sequence=1,
                                       certificate_digest=message_digest(cert), approve=True,
                                       reason=""), key)


def _cert(round_index: int) -> RoundCertificate:
    return RoundCertificate(network_id=NET, round_index=round_index, leader=FIRST.public.raw,
                            sequence=1, prev_model_hash=bytes(32), entries=(),
                            new_model_hash=bytes(32))


def test_a_validator_added_from_round_n_counts_for_finality_from_round_n_only() -> None:
    book = EndorsementBook(NET, _timeline(), 1 << 16)
    early, late = _cert(JOIN - 1), _cert(JOIN)
    assert book.is_final(early)  # the first validator alone holds all of round 1's stake
    with pytest.raises(MessageRejected) as refused:
        book.add_raw(_endorsement(SECOND, early))
    assert refused.value.reason is RejectReason.UNKNOWN_SENDER
    assert not book.is_final(late)  # from round 2 the leader holds 2 of 5
    assert book.approving(late) == (2, 5)
    book.add_raw(_endorsement(SECOND, late))
    assert book.is_final(late) and book.approving(late) == (5, 5)
    assert [s.message.validator for s in book.proof(late)] == [SECOND.public.raw]
    # a log entry of an old round is still judged by that round's table
    assert book.stakes(JOIN - 1) == [(FIRST.public.raw, 2)]


# -- live: the services over the in-memory transport ------------------------------------------


Services = tuple[list[ValidatorService], list[MinerService]]


async def _run(network: NetworkConfig, base: Path, tmp: Path) -> Services:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    validators = [FIRST, SECOND]
    everyone = [*validators, *MINERS, NEWCOMER]
    common = {"network": network, "genesis_time": start_time(network),
              "validators": _before().validators, "last_round": ROUNDS,
              "peers": tuple(k.peer_id for k in validators)}

    vservices = []
    for i, key in enumerate(validators):
        timeline = _timeline()  # each node its own copy, as each reads the chain itself
        state = ModelState.from_base(network, base)
        certifier = scoring_certifier(network, key, tmp / f"v{i}")
        config = ValidatorConfig(state_dir=tmp / f"v{i}", miners=_before().miners,
                                 **common)  # type: ignore[arg-type]
        engine = ScoringEngine(state, certifier, timeline, work)
        vservices.append(ValidatorService(config, key, transport(key), engine,
                                          timeline=timeline))
    mservices = []
    for i, key in enumerate([*MINERS, NEWCOMER]):
        timeline = _timeline()
        # the newcomer works from round 0: it believes itself registered already (it read the
        # latest block, not the snapshot), while following the certified history correctly
        eager = MembershipTimeline.constant(_after()) if key is NEWCOMER else timeline
        mconfig = MinerConfig(state_dir=tmp / f"m{i}", **common)  # type: ignore[arg-type]
        produce = MinerProduce(live_miner("", key, work), eager, work)
        mservices.append(MinerService(mconfig, transport(key),
                                      ModelState.from_base(network, base), produce,
                                      timeline=timeline))
    services: list[MinerService | ValidatorService] = [*vservices, *mservices]
    assert len(services) == len(everyone)
    await run_until_round(services, ROUNDS, limit_s=limit_s(network, ROUNDS))
    return vservices, mservices


def test_a_miner_and_a_validator_join_from_round_two(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=2, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    network = measured_network(spec, base)
    vservices, mservices = asyncio.run(_run(network, base, tmp_path))
    services: list[MinerService | ValidatorService] = [*vservices, *mservices]
    newcomer = NEWCOMER.public.raw

    assert len({s.follower.replica.model_hash for s in services}) == 1
    assert all(s.follower.failures == 0 for s in services)
    certified_newcomer = []
    for r in range(ROUNDS):
        raws = [s.follower.store.get(r) for s in services]
        assert None not in raws, f"round {r} missing from a log"
        digests = {s.follower.open_entry(raw or b"").bundle.certificate.digest
                   for s, raw in zip(services, raws, strict=True)}
        assert len(digests) == 1, f"round {r}: nodes applied different certificates"
        final = vservices[0].follower.open_entry(vservices[0].follower.store.get(r) or b"")
        cert = final.bundle.certificate.message
        senders = {e.sender for e in cert.entries}
        voters = {e.message.validator for e in final.endorsements if e.message.approve}
        if r < JOIN:
            assert newcomer not in senders
            assert cert.leader == FIRST.public.raw  # the only validator of those rounds
            assert SECOND.public.raw not in voters  # it had no vote yet
        else:
            certified_newcomer.append(newcomer in senders)
            # 2 of 5 is no majority: the new validator led or approved every such round
            assert cert.leader == SECOND.public.raw or SECOND.public.raw in voters
    assert any(certified_newcomer), "the newcomer was never certified after joining"

    # before round 2 every validator's pool refused the newcomer, counting why
    for v in vservices:
        assert v.gate.snapshot().get("refused_unknown_sender", 0) >= 1
    # the new validator endorsed nothing of the rounds it held no stake in
    assert all(r >= JOIN for r, _ in vservices[1].disputes)
    assert vservices[1].scored >= ROUNDS - JOIN
