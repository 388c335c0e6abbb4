"""Score receipts served over direct requests: why a miner got what it got in a round.

request  := miner public key (32 bytes) | round:u64
response := sealed ScoreReceipt (empty when the round is not remembered)
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping

from adapters.transport.base import Request
from protocol.domain_types import PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.messages import ScoreReceipt
from protocol.signing import seal
from validator.ratings import RatingStore
from validator.service.certify import time_sequence

RECEIPT_PROTOCOL = "seedswarm/receipt/1"
_ROUND = struct.Struct(">Q")
REMEMBERED_ROUNDS = 256


def encode_receipt_request(miner: PublicKey, round_index: int) -> bytes:
    """What a miner sends to ask for its receipt."""
    return miner + _ROUND.pack(round_index)


class ReceiptBook:
    """This validator's own weight for every miner in the last `REMEMBERED_ROUNDS` rounds it
    scored (the weight it would certify, whoever led the round)."""

    def __init__(
        self,
        key: NodeKey,
        network_id: str,
        ratings: RatingStore,
        scored: Callable[[PublicKey, int], ScoreReceipt | None] | None = None,
    ) -> None:
        self.key = key
        self.network_id = network_id
        self.ratings = ratings
        self.scored = scored
        """The scoring pipeline's receipts, preferred where it has them."""
        self.rounds: OrderedDict[int, dict[PublicKey, int]] = OrderedDict()

    def remember_round(
        self, round_index: int, weights_ppb: Mapping[PublicKey, int], miners: Collection[PublicKey]
    ) -> None:
        """Record this validator's own weights for a round it scored (others get 0)."""
        weights = dict.fromkeys(miners, 0)
        weights.update(weights_ppb)
        self.rounds[round_index] = weights
        while len(self.rounds) > REMEMBERED_ROUNDS:
            self.rounds.popitem(last=False)

    def receipt(self, miner: PublicKey, round_index: int) -> ScoreReceipt | None:
        """The receipt of `miner` for `round_index`, if remembered."""
        if self.scored is not None:
            scored = self.scored(miner, round_index)
            if scored is not None:
                return scored
        weights = self.rounds.get(round_index)
        if weights is None or miner not in weights:
            return None
        rating = self.ratings.get(miner.hex())
        included = weights[miner] > 0
        return ScoreReceipt(
            network_id=self.network_id, round_index=round_index, validator=self.key.public.raw,
            sequence=time_sequence(), miner=miner, filters_passed=included, verified=None,
            loss_delta_own=0.0, loss_delta_random=0.0, influence=0.0,
            rating_mu=rating.mu, rating_sigma=rating.sigma, weight_ppb=weights[miner],
            reason="included in its decision" if included else "not included",
        )

    async def handle(self, request: Request) -> bytes:
        """Transport handler for RECEIPT_PROTOCOL."""
        if len(request.data) != 32 + _ROUND.size:
            raise MessageRejected(RejectReason.MALFORMED, "receipt request has the wrong size")
        (round_index,) = _ROUND.unpack(request.data[32:])
        receipt = self.receipt(PublicKey(request.data[:32]), round_index)
        return b"" if receipt is None else seal(receipt, self.key)
