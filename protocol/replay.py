"""Replay protection for verified envelopes, in bounded memory.

Rules `ReplayGuard.check` applies to a `Signed` message, in this order (first failure wins):

1. Round window: `round_index` must lie in
   [current_round - past_rounds, current_round + future_rounds]; otherwise WRONG_ROUND.
2. Exact duplicate: an envelope digest already accepted -> DUPLICATE.
3. Sequence, per (signer, message type): a sequence already accepted from that signer with a
   different digest -> REPLAYED (the signer equivocated or a message is being replayed under a
   reused counter); a sequence at or below the highest accepted one -> STALE_SEQUENCE, unless
   `reorder_window` > 0 and it is at most that far below the highest and not seen yet (gossip
   may reorder a burst). The first message of an unknown signer is accepted at any sequence.

Senders should therefore draw sequences from a counter that survives restarts, e.g. the time
in microseconds. Wrong networks never get this far: `open_envelope` rejects them.

Memory: at most `max_digests` digests (oldest evicted first; digests of rounds that left the
window are dropped as the round advances) and `max_senders` sender states (least recently
active evicted), each remembering its last `history` sequences. An evicted sender restarts as
unknown; messages older than the round window stay rejected regardless.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from protocol.domain_types import Digest, PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.messages import Message
from protocol.signing import Signed


@dataclass
class _SenderState:
    highest: int
    recent: dict[int, Digest] = field(default_factory=dict)  # sequence -> digest


class ReplayGuard:
    """Stateful filter; call `check` on each verified message, in arrival order."""

    def __init__(
        self,
        *,
        past_rounds: int = 1,
        future_rounds: int = 1,
        reorder_window: int = 0,
        history: int = 64,
        max_digests: int = 65_536,
        max_senders: int = 16_384,
    ) -> None:
        if min(past_rounds, future_rounds, reorder_window) < 0:
            raise ValueError("round and reorder windows must be non-negative")
        if min(history, max_digests, max_senders) < 1:
            raise ValueError("history and capacities must be positive")
        self.past_rounds = past_rounds
        self.future_rounds = future_rounds
        self.reorder_window = reorder_window
        self.history = max(history, reorder_window + 1)
        self.max_digests = max_digests
        self.max_senders = max_senders
        self._digests: OrderedDict[Digest, int] = OrderedDict()  # digest -> round
        self._senders: OrderedDict[tuple[PublicKey, str], _SenderState] = OrderedDict()

    def check(self, signed: Signed[Message], *, current_round: int) -> None:
        """Raise MessageRejected if `signed` must be dropped; otherwise remember it."""
        msg = signed.message
        self._check_round(msg.round_index, current_round)
        self._forget_rounds_before(current_round - self.past_rounds)
        if signed.digest in self._digests:
            raise MessageRejected(RejectReason.DUPLICATE, "message already seen")
        key = (signed.signer.raw, msg.TYPE_NAME)
        state = self._senders.get(key)
        if state is not None:
            self._check_sequence(state, msg.sequence, signed.digest)
        self._remember(key, state, msg, signed.digest)

    def __len__(self) -> int:
        """Number of digests currently remembered."""
        return len(self._digests)

    @property
    def num_senders(self) -> int:
        """Number of (signer, message type) sequence states currently remembered."""
        return len(self._senders)

    @property
    def num_sequences(self) -> int:
        """Number of (signer, message type, sequence) entries currently remembered."""
        return sum(len(state.recent) for state in self._senders.values())

    def _check_round(self, round_index: int, current_round: int) -> None:
        low = current_round - self.past_rounds
        high = current_round + self.future_rounds
        if not low <= round_index <= high:
            raise MessageRejected(
                RejectReason.WRONG_ROUND, f"round {round_index} outside [{low}, {high}]"
            )

    def _check_sequence(self, state: _SenderState, sequence: int, digest: Digest) -> None:
        seen = state.recent.get(sequence)
        if seen is not None:
            reason = RejectReason.DUPLICATE if seen == digest else RejectReason.REPLAYED
            raise MessageRejected(reason, f"sequence {sequence} already used")
        # The highest sequence is always in `recent` (pruning keeps the latest `history`), so it
        # was handled above: without a reorder window, anything below it is stale.
        lowest = state.highest - self.reorder_window
        if sequence < lowest:
            raise MessageRejected(
                RejectReason.STALE_SEQUENCE, f"sequence {sequence} <= {state.highest}"
            )

    def _remember(
        self, key: tuple[PublicKey, str], state: _SenderState | None, msg: Message, digest: Digest
    ) -> None:
        self._digests[digest] = msg.round_index
        while len(self._digests) > self.max_digests:
            self._digests.popitem(last=False)
        if state is None:
            state = _SenderState(highest=msg.sequence)
            self._senders[key] = state
        state.highest = max(state.highest, msg.sequence)
        state.recent[msg.sequence] = digest
        if len(state.recent) > 2 * self.history:
            floor = state.highest - self.history
            state.recent = {seq: d for seq, d in state.recent.items() if seq > floor}
        self._senders.move_to_end(key)
        while len(self._senders) > self.max_senders:
            self._senders.popitem(last=False)

    def _forget_rounds_before(self, oldest_round: int) -> None:
        # Digests arrive roughly in round order; stop at the first one still in the window.
        while self._digests:
            digest, round_index = next(iter(self._digests.items()))
            if round_index >= oldest_round:
                break
            del self._digests[digest]
