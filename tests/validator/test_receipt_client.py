"""Fetching score receipts from a validator's ReceiptBook over a transport, and refusing answers
that do not verify or come from another key."""

from __future__ import annotations

import asyncio

import pytest

from adapters.transport.base import Request
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from protocol.domain_types import PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.signing import seal
from validator.ratings import RatingStore
from validator.service.receipt_client import fetch_receipt, fetch_receipts
from validator.service.receipt_server import RECEIPT_PROTOCOL, ReceiptBook

NET = "receipts-net"
LIMIT = 1 << 16


def book(key: NodeKey, miner: PublicKey, weights: dict[int, int]) -> ReceiptBook:
    receipts = ReceiptBook(key, NET, RatingStore())
    for round_index, weight in weights.items():
        receipts.remember_round(round_index, {miner: weight} if weight else {}, [miner])
    return receipts


async def pair(served: ReceiptBook) -> tuple[MemoryTransport, MemoryTransport]:
    medium = MemoryNetwork()
    validator = MemoryTransport(medium, served.key.peer_id, network_id=NET)
    asker = MemoryTransport(medium, NodeKey.generate().peer_id, network_id=NET)
    validator.serve(RECEIPT_PROTOCOL, served.handle)
    await validator.start()
    await asker.start()
    return validator, asker


def test_a_remembered_round_comes_back_signed_and_verified() -> None:
    v, miner = NodeKey.generate(), NodeKey.generate().public.raw

    async def scenario() -> None:
        _, asker = await pair(book(v, miner, {4: 300_000_000, 5: 0}))
        got = await fetch_receipt(asker, v.public.raw, miner, 4, max_bytes=LIMIT, timeout_s=2)
        assert got is not None
        assert (got.validator, got.miner, got.round_index) == (v.public.raw, miner, 4)
        assert (got.weight_ppb, got.reason) == (300_000_000, "included in its decision")
        left_out = await fetch_receipt(asker, v.public.raw, miner, 5, max_bytes=LIMIT,
                                       timeout_s=2)
        assert left_out is not None and left_out.weight_ppb == 0
        assert left_out.reason == "not included"
        assert await fetch_receipt(asker, v.public.raw, miner, 6, max_bytes=LIMIT,
                                   timeout_s=2) is None

    asyncio.run(scenario())


@pytest.mark.parametrize(("forgery", "reason"), [
    ("signed by another key", RejectReason.UNKNOWN_SENDER),
    ("tampered", RejectReason.BAD_SIGNATURE),
    ("another miner", RejectReason.MALFORMED),
])
def test_an_answer_that_does_not_verify_is_refused(forgery: str, reason: RejectReason) -> None:
    v, other = NodeKey.generate(), NodeKey.generate()
    miner, someone = NodeKey.generate().public.raw, NodeKey.generate().public.raw

    async def forge(request: Request) -> bytes:
        if forgery == "signed by another key":
            receipt = book(other, miner, {4: 1}).receipt(miner, 4)
            assert receipt is not None
            return seal(receipt, other)
        if forgery == "another miner":
            return await book(v, someone, {4: 1}).handle(
                Request(request.from_peer, request.protocol, someone + request.data[32:]))
        sealed = bytearray(await book(v, miner, {4: 7}).handle(request))
        sealed[-80] ^= 1  # inside the encoded receipt, before the signature
        return bytes(sealed)

    async def scenario() -> None:
        served = book(v, miner, {})
        validator, asker = await pair(served)
        validator.serve(RECEIPT_PROTOCOL, forge)
        with pytest.raises(MessageRejected) as raised:
            await fetch_receipt(asker, v.public.raw, miner, 4, max_bytes=LIMIT, timeout_s=2)
        assert raised.value.reason == reason

        answers = await fetch_receipts(asker, [v.public.raw], miner, [4], max_bytes=LIMIT,
                                       timeout_s=2)
        assert answers[0].receipt is None and answers[0].error.startswith("rejected")

    asyncio.run(scenario())


def test_an_unreachable_validator_is_asked_once() -> None:
    v, ghost, miner = NodeKey.generate(), NodeKey.generate(), NodeKey.generate().public.raw

    async def scenario() -> None:
        _, asker = await pair(book(v, miner, {1: 5, 2: 6}))
        answers = await fetch_receipts(asker, [ghost.public.raw, v.public.raw], miner, [1, 2, 3],
                                       max_bytes=LIMIT, timeout_s=1)
        assert asker.stats.requests_sent == 1 + 3  # the ghost once, the validator per round
        by = {(a.validator, a.round_index): a for a in answers}
        assert all(by[ghost.public.raw, r].error.startswith("unreachable") for r in (1, 2, 3))
        assert [by[v.public.raw, r].receipt.weight_ppb for r in (1, 2)] == [5, 6]  # type: ignore[union-attr]
        assert by[v.public.raw, 3].receipt is None and "no receipt" in by[v.public.raw, 3].error

    asyncio.run(scenario())
