"""Finality: rounds apply only once validators holding a stake majority approve them.

The replica here is a real (tiny) state machine: its model hash is a hash chain, and a bundle
applies only when its certificate's new hash is the one the chain reproduces.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.storage.logstore import RoundLogStore, write_atomic
from adapters.transport.base import Limits
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from protocol import finality
from protocol.errors import ConsensusError, MessageRejected, RejectReason
from protocol.finality import (
    MAX_CERTIFICATES_PER_VALIDATOR,
    EndorsementBook,
    FinalizedRound,
    approving_stake,
    is_final,
    open_finalized,
)
from protocol.identity import NodeKey
from protocol.leader import select_leader
from protocol.messages import CertificateEndorsement, RoundCertificate
from protocol.randomness import round_beacon
from protocol.roundlog import RoundBundle, decode_frames, encode_frames
from protocol.signing import open_envelope, seal
from runtime.catchup import LOG_PROTOCOL, log_handler
from runtime.follower import MAX_CANDIDATES_PER_LEADER, Follower
from runtime.peergate import GatePolicy, PeerGate

NET = "finality-test"
GENESIS = hashlib.sha256(b"genesis").digest()
MAX = 1 << 20


def _key(label: str) -> NodeKey:
    return NodeKey.from_bytes(hashlib.sha256(label.encode()).digest())


BIG, MID, SMALL = _key("stake 40"), _key("stake 35"), _key("stake 25")
TRIO = [(BIG.public.raw, 40), (MID.public.raw, 35), (SMALL.public.raw, 25)]
KEYS = {k.public.raw: k for k in (BIG, MID, SMALL)}
SOLO = _key("solo")
OUTSIDER = _key("not a validator")


def successor(model_hash: bytes, round_index: int) -> bytes:
    """The honest model hash after `round_index` (what HashReplica reproduces)."""
    return hashlib.sha256(model_hash + struct.pack(">Q", round_index)).digest()


class HashReplica:
    """A replica whose model is a hash chain; checkpoints to a file like a real node."""

    def __init__(self) -> None:
        self.round_index = 0
        self.model_hash = GENESIS
        self.applied: list[bytes] = []

    def apply_bundle(self, bundle: RoundBundle) -> bytes:
        if bundle.round_index != self.round_index or bundle.prev_model_hash != self.model_hash:
            raise ConsensusError("does not follow")
        expected = successor(self.model_hash, self.round_index)
        if bundle.new_model_hash != expected:
            raise ConsensusError("does not reproduce")
        self.round_index += 1
        self.model_hash = expected
        self.applied.append(bundle.certificate.digest)
        return expected

    def save(self, directory: Path) -> Path:
        path = directory / "replica"
        write_atomic(path, struct.pack(">Q", self.round_index) + self.model_hash)
        return path

    def reload(self, directory: Path) -> None:
        path = directory / "replica"
        if path.exists():
            raw = path.read_bytes()
            self.round_index, self.model_hash = struct.unpack(">Q", raw[:8])[0], raw[8:]
        else:
            self.round_index, self.model_hash = 0, GENESIS


def leader_key(round_index: int, prev: bytes, stakes: list[tuple[bytes, int]],
               keys: dict[bytes, NodeKey], attempt: int = 0) -> NodeKey:
    return keys[select_leader(round_beacon(NET, round_index), stakes, attempt)]


def make_bundle(leader: NodeKey, round_index: int, prev: bytes, new: bytes | None = None,
                sequence: int = 1) -> RoundBundle:
    cert = RoundCertificate(
        network_id=NET, round_index=round_index, leader=leader.public.raw, sequence=sequence,
        prev_model_hash=prev, entries=(),
        new_model_hash=successor(prev, round_index) if new is None else new,
    )
    signed = open_envelope(seal(cert, leader), network_id=NET, expect=RoundCertificate)
    return RoundBundle(signed, ())


def vote(key: NodeKey, bundle: RoundBundle, approve: bool = True, sequence: int = 1,
         digest: bytes | None = None) -> bytes:
    return seal(CertificateEndorsement(
        network_id=NET, round_index=bundle.round_index, validator=key.public.raw,
        sequence=sequence, certificate_digest=digest or bundle.certificate.digest,
        approve=approve, reason="approved" if approve else "new_hash_mismatch",
    ), key)


def opened(raw: bytes) -> finality.SignedEndorsement:
    return open_envelope(raw, network_id=NET, expect=CertificateEndorsement)


def others(leader: NodeKey) -> list[NodeKey]:
    return [k for k in (BIG, MID, SMALL) if k is not leader]


def follower(tmp: Path, stakes: list[tuple[bytes, int]], replica: HashReplica | None = None,
             ) -> Follower:
    return Follower(replica or HashReplica(), tmp, network_id=NET, validators=stakes,
                    max_envelope_bytes=MAX)


def gate() -> PeerGate:
    return PeerGate(GatePolicy(max_invalid=3))


# -- the rule --------------------------------------------------------------------------------


def test_three_validators_40_35_25_need_two_approvals() -> None:
    for leader in (BIG, MID, SMALL):
        bundle = make_bundle(leader, 0, GENESIS)
        cert = bundle.certificate.message
        assert not is_final(cert, [], TRIO)  # the leader alone holds at most 40 %
        for other in others(leader):
            yes = opened(vote(other, bundle)).message
            assert is_final(cert, [yes], TRIO)
            assert approving_stake(cert, [yes], TRIO)[1] == 100
        # two thirds: 40 + 25 = 65 is not enough, all three are
        both = [opened(vote(o, bundle)).message for o in others(leader)]
        assert is_final(cert, both, TRIO, Fraction(2, 3))


def test_one_validator_is_final_at_once() -> None:
    bundle = make_bundle(SOLO, 0, GENESIS)
    assert is_final(bundle.certificate.message, [], [(SOLO.public.raw, 7)])
    book = EndorsementBook(NET, [(SOLO.public.raw, 7)], MAX)
    assert book.is_final(bundle.certificate.message)


# -- the endorsement book --------------------------------------------------------------------


def test_book_refuses_outsiders_replays_garbage_and_other_networks() -> None:
    book = EndorsementBook(NET, TRIO, MAX)
    bundle = make_bundle(BIG, 0, GENESIS)
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(OUTSIDER, bundle))
    assert info.value.reason is RejectReason.UNKNOWN_SENDER
    book.add_raw(vote(MID, bundle))
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(MID, bundle))  # replayed
    assert info.value.reason is RejectReason.DUPLICATE
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(MID, bundle, sequence=2))  # the same vote again, re-signed
    assert info.value.reason is RejectReason.DUPLICATE
    with pytest.raises(MessageRejected):
        book.add_raw(b"\x01garbage")
    foreign = seal(CertificateEndorsement(
        network_id="another-net", round_index=0, validator=SMALL.public.raw, sequence=1,
        certificate_digest=bundle.certificate.digest, approve=True, reason=""), SMALL)
    with pytest.raises(MessageRejected) as info:
        book.add_raw(foreign)
    assert info.value.reason is RejectReason.WRONG_NETWORK
    assert [s.message.validator for s in book.endorsements(0, bundle.certificate.digest)] == [
        MID.public.raw]
    assert book.is_final(bundle.certificate.message)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_book_raises_only_message_rejected_on_any_bytes(raw: bytes) -> None:
    book = EndorsementBook(NET, TRIO, MAX)
    with pytest.raises(MessageRejected):
        book.add_raw(raw)


def test_an_approval_of_another_certificate_does_not_count() -> None:
    book = EndorsementBook(NET, TRIO, MAX)
    honest = make_bundle(BIG, 0, GENESIS)
    other = make_bundle(BIG, 0, GENESIS, new=b"\x09" * 32)
    book.add_raw(vote(MID, other))
    book.add_raw(vote(SMALL, honest, digest=other.certificate.digest))
    assert not book.is_final(honest.certificate.message)
    assert book.is_final(other.certificate.message)
    assert book.proof(honest.certificate.message) == ()


def test_a_validator_approving_and_disputing_counts_for_nothing() -> None:
    book = EndorsementBook(NET, TRIO, MAX)
    bundle = make_bundle(SMALL, 0, GENESIS)
    book.add_raw(vote(MID, bundle, approve=True))
    assert book.is_final(bundle.certificate.message)  # 25 + 35
    book.add_raw(vote(MID, bundle, approve=False, sequence=2))
    assert not book.is_final(bundle.certificate.message)
    assert book.proof(bundle.certificate.message) == ()
    assert len(book.endorsements(0, bundle.certificate.digest)) == 2
    book.add_raw(vote(BIG, bundle))
    assert book.is_final(bundle.certificate.message)  # 25 + 40


def test_book_memory_is_bounded_per_validator_and_by_round() -> None:
    book = EndorsementBook(NET, TRIO, MAX)
    bundles = [make_bundle(BIG, 0, GENESIS, new=bytes([i]) * 32)
               for i in range(MAX_CERTIFICATES_PER_VALIDATOR + 1)]
    for b in bundles[:-1]:
        book.add_raw(vote(MID, b))
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(MID, bundles[-1]))
    assert info.value.reason is RejectReason.OUT_OF_BOUNDS
    book.add_raw(vote(SMALL, bundles[-1]))  # one validator's flood does not block another
    far = make_bundle(BIG, finality.MAX_ROUNDS_AHEAD, GENESIS)
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(MID, far))
    assert info.value.reason is RejectReason.WRONG_ROUND
    book.forget_before(1)
    assert book.endorsements(0, bundles[0].certificate.digest) == []
    with pytest.raises(MessageRejected) as info:
        book.add_raw(vote(SMALL, bundles[0]))
    assert info.value.reason is RejectReason.WRONG_ROUND


# -- finalized log entries -------------------------------------------------------------------


def _open(raw: bytes, stakes: list[tuple[bytes, int]]) -> FinalizedRound:
    return open_finalized(raw, network_id=NET, validators=stakes, max_envelope_bytes=MAX)


def test_finalized_entries_round_trip_and_need_enough_endorsements() -> None:
    leader = leader_key(0, GENESIS, TRIO, KEYS)
    bundle = make_bundle(leader, 0, GENESIS)
    helper = others(leader)[0]
    entry = FinalizedRound(bundle, (opened(vote(helper, bundle)),))
    back = _open(entry.encode(), TRIO)
    assert back == entry and back.encode() == entry.encode()
    with pytest.raises(MessageRejected) as info:
        _open(FinalizedRound(bundle, ()).encode(), TRIO)
    assert info.value.reason is RejectReason.NOT_FINAL, info.value
    with pytest.raises(MessageRejected):  # a bare bundle is no log entry at all
        _open(bundle.encode(), TRIO)
    disputed = FinalizedRound(bundle, (opened(vote(helper, bundle, approve=False)),))
    with pytest.raises(MessageRejected):
        _open(disputed.encode(), TRIO)


def test_finalized_entries_refuse_forged_proofs() -> None:
    leader = leader_key(0, GENESIS, TRIO, KEYS)
    bundle = make_bundle(leader, 0, GENESIS)
    other = make_bundle(leader, 0, GENESIS, new=b"\x05" * 32)
    helper = others(leader)[0]
    forged = {
        RejectReason.UNKNOWN_SENDER: [vote(OUTSIDER, bundle)],
        RejectReason.MALFORMED: [vote(helper, other)],
        RejectReason.DUPLICATE: [vote(helper, bundle), vote(helper, bundle, sequence=2)],
    }
    for reason, votes in forged.items():
        raw = encode_frames([bundle.encode(), *votes])
        with pytest.raises(MessageRejected) as info:
            _open(raw, TRIO)
        assert info.value.reason is reason
    with pytest.raises(MessageRejected):  # more endorsements than validators
        _open(encode_frames([bundle.encode(), *[vote(helper, bundle)] * 4]), TRIO)


def test_a_majority_leader_alone_is_proof_enough() -> None:
    solo = [(SOLO.public.raw, 1)]
    bundle = make_bundle(SOLO, 0, GENESIS)
    assert _open(FinalizedRound(bundle, ()).encode(), solo) == FinalizedRound(bundle, ())
    with pytest.raises(MessageRejected):  # only the finalized form is a log entry
        _open(bundle.encode(), solo)
    assert decode_frames(FinalizedRound(bundle, ()).encode())[0] == bundle.encode()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_open_finalized_raises_only_message_rejected(raw: bytes) -> None:
    with pytest.raises(MessageRejected):
        _open(raw, TRIO)


# -- the follower ----------------------------------------------------------------------------


def test_single_validator_network_applies_at_once(tmp_path: Path) -> None:
    f = follower(tmp_path, [(SOLO.public.raw, 1)])
    assert f.receive(make_bundle(SOLO, 0, GENESIS).encode(), "peer", gate(), 0.0)
    assert f.ready() and f.endorsements.is_final(f.candidates(0)[0].certificate.message)
    assert asyncio.run(f.advance()) == [0]
    stored = f.store.get(0)
    assert stored is not None
    assert f.open_entry(stored).bundle.new_model_hash == f.replica.model_hash
    assert f.open_entry(stored).endorsements == ()


def test_three_validators_apply_only_after_a_second_approval(tmp_path: Path) -> None:
    f = follower(tmp_path, TRIO)
    leader = leader_key(0, GENESIS, TRIO, KEYS)
    bundle = make_bundle(leader, 0, GENESIS)
    g = gate()
    assert f.receive(bundle.encode(), "leader", g, 0.0)
    assert not f.ready()
    assert not any(f.endorsements.is_final(b.certificate.message) for b in f.candidates(0))
    assert asyncio.run(f.advance()) == []
    assert f.replica.round_index == 0
    assert not f.receive_endorsement(vote(OUTSIDER, bundle), "x", g, 0.0)
    assert g.refused_by("x") == {"unknown_sender": 1}
    assert not f.ready()
    helper = others(leader)[0]
    assert f.receive_endorsement(vote(helper, bundle), "v", g, 0.0)
    assert not f.receive_endorsement(vote(helper, bundle), "v2", g, 0.0)  # gossip duplicate
    assert g.refused_by("v2") == {}  # not held against the relaying peer
    assert f.ready()
    assert asyncio.run(f.advance()) == [0]
    stored = f.store.get(0)
    assert stored is not None
    entry = open_finalized(stored, network_id=NET, validators=TRIO, max_envelope_bytes=MAX)
    assert [s.message.validator for s in entry.endorsements] == [helper.public.raw]


def test_an_equivocating_leader_cannot_displace_the_endorsed_bundle(tmp_path: Path) -> None:
    replica = HashReplica()
    f = follower(tmp_path, TRIO, replica)
    leader = leader_key(0, GENESIS, TRIO, KEYS)
    bad = make_bundle(leader, 0, GENESIS, new=b"\x66" * 32, sequence=1)
    honest = make_bundle(leader, 0, GENESIS, sequence=2)
    assert f.offer(bad) and f.offer(honest)  # the bad one first
    assert f.candidates(0) == [bad, honest]
    for validator in others(leader):
        f.receive_endorsement(vote(validator, bad, approve=False), "v", gate(), 0.0)
        f.endorse_locally(opened(vote(validator, honest)))
    assert not f.endorsements.is_final(bad.certificate.message)
    assert asyncio.run(f.advance()) == [0]
    assert replica.applied == [honest.certificate.digest]
    assert f.candidates(0) == [] and f.failures == 0
    # a third bundle by the same leader for a later round is bounded per leader
    later = [make_bundle(leader, 1, f.replica.model_hash, new=bytes([i]) * 32)
             for i in range(MAX_CANDIDATES_PER_LEADER + 1)]
    assert [f.offer(b) for b in later] == [True] * MAX_CANDIDATES_PER_LEADER + [False]


def test_a_final_bundle_that_does_not_reproduce_gives_way(tmp_path: Path) -> None:
    replica = HashReplica()
    f = follower(tmp_path, [(SOLO.public.raw, 1)], replica)
    bad = make_bundle(SOLO, 0, GENESIS, new=b"\x66" * 32, sequence=1)
    honest = make_bundle(SOLO, 0, GENESIS, sequence=2)
    assert f.offer(bad) and f.offer(honest)
    assert asyncio.run(f.advance()) == [0]
    assert replica.applied == [honest.certificate.digest]
    assert f.failures <= 1  # the bad one failed (if it was tried first) and was dropped
    logged = f.open_entry(f.store.get(0) or b"").bundle
    assert logged.certificate.digest == honest.certificate.digest


def test_a_bundle_on_the_wrong_previous_model_is_refused(tmp_path: Path) -> None:
    solo = [(SOLO.public.raw, 1)]
    replica = HashReplica()
    f = follower(tmp_path, solo, replica)
    wrong = make_bundle(SOLO, 0, b"\x01" * 32)
    assert not f.offer(wrong)
    assert not f.ready()
    # a future round's candidate is checked once the replica gets there
    early_wrong = make_bundle(SOLO, 1, b"\x02" * 32)
    early_right = make_bundle(SOLO, 1, successor(GENESIS, 0))
    assert f.offer(early_wrong) and f.offer(early_right)
    assert f.offer(make_bundle(SOLO, 0, GENESIS))
    assert asyncio.run(f.advance()) == [0, 1]
    assert replica.applied[-1] == early_right.certificate.digest
    assert not f.offer(make_bundle(SOLO, 0, GENESIS, sequence=9))  # stale


def test_replay_applies_final_entries_and_drops_unfinal_ones(tmp_path: Path) -> None:
    f = follower(tmp_path, [(SOLO.public.raw, 1)])
    f.offer(make_bundle(SOLO, 0, GENESIS))
    asyncio.run(f.advance())
    entry_1 = FinalizedRound(make_bundle(SOLO, 1, f.replica.model_hash), ()).encode()
    f.store.put(1, entry_1)  # crashed after writing the log entry, before applying
    restarted = HashReplica()
    restarted.reload(tmp_path)
    again = follower(tmp_path, [(SOLO.public.raw, 1)], restarted)
    assert asyncio.run(again.replay_local()) == [1]
    # the same log read under a 3-validator table lacks proof: dropped, never applied
    leader = leader_key(2, restarted.model_hash, TRIO, KEYS)
    f.store.put(2, make_bundle(leader, 2, restarted.model_hash).encode())
    trio = follower(tmp_path, TRIO, restarted)
    assert asyncio.run(trio.replay_local()) == []
    assert trio.store.get(2) is None and restarted.round_index == 2


async def _catch_up_from(entries: list[bytes], tmp: Path) -> tuple[Follower, list[int]]:
    medium = MemoryNetwork()
    server = MemoryTransport(medium, "server", network_id=NET, limits=Limits(MAX))
    client = MemoryTransport(medium, "client", network_id=NET, limits=Limits(MAX))
    store = RoundLogStore(tmp / "served")
    for r, raw in enumerate(entries):
        store.put(r, raw)
    server.serve(LOG_PROTOCOL, log_handler(store, MAX))
    await server.start()
    await client.start()
    try:
        f = follower(tmp / "client", TRIO)
        applied = await f.catch_up(client, ["server"], until_round=len(entries),
                                   request_timeout=2.0)
    finally:
        await client.stop()
        await server.stop()
    return f, applied


def test_catch_up_refuses_entries_without_enough_endorsements(tmp_path: Path) -> None:
    prev, entries, unproven = GENESIS, [], []
    for r in range(3):
        leader = leader_key(r, prev, TRIO, KEYS)
        bundle = make_bundle(leader, r, prev)
        entries.append(FinalizedRound(bundle, (opened(vote(others(leader)[1], bundle)),)))
        unproven.append(FinalizedRound(bundle, ()))
        prev = bundle.new_model_hash
    f, applied = asyncio.run(_catch_up_from([e.encode() for e in unproven], tmp_path / "a"))
    assert applied == [] and f.replica.round_index == 0 and f.store.rounds() == []
    mixed = [entries[0].encode(), unproven[1].encode(), entries[2].encode()]
    f, applied = asyncio.run(_catch_up_from(mixed, tmp_path / "b"))
    assert applied == [0] and f.replica.round_index == 1
    f, applied = asyncio.run(_catch_up_from([e.encode() for e in entries], tmp_path / "c"))
    assert applied == [0, 1, 2] and f.replica.model_hash == prev
