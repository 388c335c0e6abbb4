"""Issue 15 (3): an equivocation is a provable fact, and a forged proof is refused."""

from __future__ import annotations

import hashlib

import pytest

from protocol.domain_types import ModelHash
from protocol.equivocation import (
    EquivocationBook,
    carried_proofs,
    encode_proofs,
    open_equivocation,
    prove_equivocation,
)
from protocol.errors import MessageRejected, RejectReason
from protocol.frames import encode_frames
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.signing import Signed, open_envelope, seal

NET = "equivocation-net"
MAX = 1 << 16


def _key(label: str) -> NodeKey:
    return NodeKey.from_bytes(hashlib.sha256(label.encode()).digest())


MINER, OTHER = _key("miner"), _key("other-miner")


def _signed(key: NodeKey, *, round_index: int = 3, sequence: int = 1,
            network_id: str = NET) -> Signed[Contribution]:
    message = Contribution(
        network_id=network_id, round_index=round_index, sender=key.public.raw,
        sequence=sequence, base_model_hash=ModelHash(b"\x07" * 32), codec="zo",
        direction="gaussian", rank=1, block_counts=(), scale=1.0, codes=b"\x01\x02",
        compute_ms=1,
    )
    return open_envelope(seal(message, key), network_id=network_id, expect=Contribution)


def test_two_versions_differing_only_in_sequence_prove_equivocation() -> None:
    a, b = _signed(MINER, sequence=1), _signed(MINER, sequence=2)
    proof = prove_equivocation(a, b)
    assert proof.sender == MINER.public.raw and proof.round_index == 3
    assert prove_equivocation(b, a) == proof  # one pair, one proof
    opened = open_equivocation(proof.encode(), network_id=NET, max_envelope_bytes=MAX)
    assert opened == proof
    assert carried_proofs(encode_proofs([proof]), network_id=NET,
                          max_envelope_bytes=MAX) == (proof,)


@pytest.mark.parametrize(("a", "b", "reason"), [
    (_signed(MINER), _signed(OTHER), RejectReason.UNKNOWN_SENDER),     # two signers
    (_signed(MINER), _signed(MINER), RejectReason.DUPLICATE),          # the same bytes twice
    (_signed(MINER, round_index=3, sequence=1), _signed(MINER, round_index=4, sequence=2),
     RejectReason.WRONG_ROUND),                                        # two rounds
])
def test_forged_proofs_are_refused(
    a: Signed[Contribution], b: Signed[Contribution], reason: RejectReason
) -> None:
    with pytest.raises(MessageRejected) as caught:
        prove_equivocation(a, b)
    assert caught.value.reason is reason
    # the same forgeries on the wire
    raw = encode_frames(sorted([a.envelope, b.envelope]))
    with pytest.raises(MessageRejected):
        open_equivocation(raw, network_id=NET, max_envelope_bytes=MAX)


def test_a_proof_with_a_broken_signature_or_of_another_network_is_refused() -> None:
    a, b = _signed(MINER, sequence=1), _signed(MINER, sequence=2)
    proof = prove_equivocation(a, b)
    tampered = bytearray(proof.second.envelope)
    tampered[-1] ^= 1
    with pytest.raises(MessageRejected):
        open_equivocation(encode_frames([proof.first.envelope, bytes(tampered)]),
                          network_id=NET, max_envelope_bytes=MAX)
    with pytest.raises(MessageRejected):
        open_equivocation(proof.encode(), network_id="another-net", max_envelope_bytes=MAX)
    with pytest.raises(MessageRejected):  # not in digest order
        open_equivocation(encode_frames([proof.second.envelope, proof.first.envelope]),
                          network_id=NET, max_envelope_bytes=MAX)
    with pytest.raises(MessageRejected):  # two proofs of one offence in one bundle
        carried_proofs(encode_proofs([proof, proof]), network_id=NET, max_envelope_bytes=MAX)
    for garbage in (b"", b"\x00\x00\x00\x02", b"\xff" * 40):
        with pytest.raises(MessageRejected):
            open_equivocation(garbage, network_id=NET, max_envelope_bytes=MAX)


def test_the_book_keeps_the_first_version_and_proves_the_second_once() -> None:
    book = EquivocationBook(rounds=2)
    a, b, c = (_signed(MINER, sequence=s) for s in (2, 1, 3))
    assert book.observe(a) is None
    assert book.observe(a) is None  # the same message again is no offence
    assert book.observe(_signed(OTHER)) is None
    proof = book.observe(b)  # a lower sequence: still proof, whatever the order
    assert proof is not None and {proof.first, proof.second} == {a, b}
    assert book.observe(c) is None  # already proven: one proof per sender and round
    assert book.equivocators(3) == {MINER.public.raw}
    assert book.equivocators(4) == frozenset()
    assert book.proofs(range(5)) == [proof]
    book.forget_before(5)  # rounds below 4 forgotten and ignored from now on
    assert book.equivocators(3) == frozenset()
    assert book.observe(_signed(MINER, sequence=9)) is None
    assert not book.add(proof)
