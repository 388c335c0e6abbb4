"""Asking validators for a miner's score receipts (the protocol of receipt_server), verified.

A receipt is accepted only if its envelope verifies, it was signed by the validator that was
asked (the key the Registry binds to that validator), and it is about the miner and round that
were asked for. Anyone may ask: the request names the miner by its public key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.transport.base import Transport, TransportError
from protocol.domain_types import PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import peer_id_from_public_bytes
from protocol.messages import ScoreReceipt
from protocol.signing import open_envelope
from validator.service.receipt_server import RECEIPT_PROTOCOL, encode_receipt_request


@dataclass(frozen=True)
class ReceiptAnswer:
    """What one validator answered for one round."""

    validator: PublicKey
    round_index: int
    receipt: ScoreReceipt | None
    error: str = ""
    """Why there is no receipt: the validator does not remember the round, did not answer, or
    sent something that failed verification."""


async def fetch_receipt(
    transport: Transport,
    validator: PublicKey,
    miner: PublicKey,
    round_index: int,
    *,
    max_bytes: int,
    timeout_s: float,
) -> ScoreReceipt | None:
    """`validator`'s receipt of `miner` in `round_index`; None if it remembers none.

    Raises TransportError when the validator cannot be reached, MessageRejected when its answer
    fails verification.
    """
    raw = await transport.request(
        peer_id_from_public_bytes(validator), RECEIPT_PROTOCOL,
        encode_receipt_request(miner, round_index), timeout=timeout_s,
    )
    if not raw:
        return None
    signed = open_envelope(raw, network_id=transport.network_id, max_size=max_bytes,
                           expect=ScoreReceipt)
    receipt = signed.message
    if receipt.validator != validator:
        raise MessageRejected(RejectReason.UNKNOWN_SENDER,
                              "the receipt is signed by another key than the validator asked")
    if receipt.miner != miner or receipt.round_index != round_index:
        raise MessageRejected(RejectReason.MALFORMED,
                              "the receipt is about another miner or round than asked")
    return receipt


async def fetch_receipts(
    transport: Transport,
    validators: Sequence[PublicKey],
    miner: PublicKey,
    rounds: Sequence[int],
    *,
    max_bytes: int,
    timeout_s: float,
) -> list[ReceiptAnswer]:
    """Every validator's answer for every round, validator by validator; a validator that
    cannot be reached is not asked again (each further try would wait out the timeout)."""
    answers: list[ReceiptAnswer] = []
    for validator in validators:
        for position, round_index in enumerate(rounds):
            try:
                receipt = await fetch_receipt(transport, validator, miner, round_index,
                                              max_bytes=max_bytes, timeout_s=timeout_s)
            except TransportError as exc:
                error = f"unreachable: {exc}"
                answers += [ReceiptAnswer(validator, r, None, error) for r in rounds[position:]]
                break
            except MessageRejected as exc:
                answers.append(ReceiptAnswer(validator, round_index, None, f"rejected: {exc}"))
                continue
            error = "" if receipt is not None else "no receipt (round not scored or forgotten)"
            answers.append(ReceiptAnswer(validator, round_index, receipt, error))
    return answers
