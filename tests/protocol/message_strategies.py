"""Hypothesis strategies and fixed keys for the message, signing and replay tests."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from protocol.identity import NodeKey
from protocol.messages import (
    CODECS,
    DIRECTIONS,
    MAX_RANK,
    MAX_REASON_CHARS,
    MAX_UINT32,
    MAX_UINT64,
    WEIGHT_ONE_PPB,
    CertEntry,
    CertificateEndorsement,
    Contribution,
    Message,
    RoundCertificate,
    ScoreReceipt,
)

NETWORK = "seedswarm-test"
KEYS: tuple[NodeKey, ...] = tuple(NodeKey.from_bytes(bytes([i + 1]) * 32) for i in range(4))

network_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
uint64 = st.integers(0, MAX_UINT64)
hashes = st.binary(min_size=32, max_size=32)
authors = st.sampled_from([k.public.raw for k in KEYS])
finite = st.floats(allow_nan=False, allow_infinity=False)
reasons = st.text(max_size=MAX_REASON_CHARS)


@st.composite
def contributions(
    draw: st.DrawFn, network_id: st.SearchStrategy[str] = network_ids
) -> Contribution:
    codec = draw(st.sampled_from(CODECS))
    codes = draw(st.binary(min_size=1, max_size=300))
    blocks: tuple[int, ...] = ()
    if codec == "fo":
        cuts = sorted(draw(st.lists(st.integers(0, len(codes)), max_size=8)))
        edges = [0, *cuts, len(codes)]
        blocks = tuple(b - a for a, b in itertools.pairwise(edges))
    return Contribution(
        network_id=draw(network_id),
        round_index=draw(uint64),
        sender=draw(authors),
        sequence=draw(uint64),
        base_model_hash=draw(hashes),
        codec=codec,
        direction=draw(st.sampled_from(DIRECTIONS)),
        rank=draw(st.integers(1, MAX_RANK)),
        block_counts=blocks,
        scale=draw(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)),
        codes=codes,
        compute_ms=draw(st.integers(0, MAX_UINT32)),
    )


@st.composite
def certificates(
    draw: st.DrawFn, network_id: st.SearchStrategy[str] = network_ids
) -> RoundCertificate:
    digests = draw(st.lists(hashes, max_size=12, unique=True))
    entries = tuple(
        CertEntry(draw(authors), d, draw(st.integers(0, WEIGHT_ONE_PPB))) for d in digests
    )
    return RoundCertificate(
        network_id=draw(network_id),
        round_index=draw(uint64),
        leader=draw(authors),
        sequence=draw(uint64),
        prev_model_hash=draw(hashes),
        entries=entries,
        new_model_hash=draw(hashes),
    )


@st.composite
def endorsements(
    draw: st.DrawFn, network_id: st.SearchStrategy[str] = network_ids
) -> CertificateEndorsement:
    return CertificateEndorsement(
        network_id=draw(network_id),
        round_index=draw(uint64),
        validator=draw(authors),
        sequence=draw(uint64),
        certificate_digest=draw(hashes),
        approve=draw(st.booleans()),
        reason=draw(reasons),
    )


@st.composite
def receipts(draw: st.DrawFn, network_id: st.SearchStrategy[str] = network_ids) -> ScoreReceipt:
    return ScoreReceipt(
        network_id=draw(network_id),
        round_index=draw(uint64),
        validator=draw(authors),
        sequence=draw(uint64),
        miner=draw(authors),
        filters_passed=draw(st.booleans()),
        verified=draw(st.none() | st.booleans()),
        loss_delta_own=draw(finite),
        loss_delta_random=draw(finite),
        influence=draw(finite),
        rating_mu=draw(finite),
        rating_sigma=draw(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)),
        weight_ppb=draw(st.integers(0, WEIGHT_ONE_PPB)),
        reason=draw(reasons),
    )


def messages(network_id: st.SearchStrategy[str] = network_ids) -> st.SearchStrategy[Message]:
    """Any valid message of any type."""
    return st.one_of(
        contributions(network_id),
        certificates(network_id),
        endorsements(network_id),
        receipts(network_id),
    )


def key_for(author: bytes) -> NodeKey:
    """The test key whose public key is `author`."""
    return next(k for k in KEYS if k.public.raw == author)


def sample_contribution(
    *, round_index: int = 5, sequence: int = 1, key: NodeKey = KEYS[0], network_id: str = NETWORK
) -> Contribution:
    """A small first-order contribution with fixed contents."""
    return Contribution(
        network_id=network_id,
        round_index=round_index,
        sender=key.public.raw,
        sequence=sequence,
        base_model_hash=bytes(range(32)),
        codec="fo",
        direction="lowrank",
        rank=2,
        block_counts=(3, 0, 5),
        scale=0.125,
        codes=bytes([1, 130, 7, 200, 0, 64, 255, 9]),
        compute_ms=1234,
    )


def sample_endorsement(
    *, round_index: int = 5, sequence: int = 1, key: NodeKey = KEYS[1], network_id: str = NETWORK
) -> CertificateEndorsement:
    return CertificateEndorsement(
        network_id=network_id,
        round_index=round_index,
        validator=key.public.raw,
        sequence=sequence,
        certificate_digest=b"\xaa" * 32,
        approve=True,
        reason="",
    )
