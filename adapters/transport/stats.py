"""Counters for what a transport sent, received and refused, with the reason for each refusal."""

from __future__ import annotations

import enum
import logging
from collections import Counter

_LOG_FIRST = 10
_LOG_EVERY = 1000


class DropReason(enum.Enum):
    """Why a transport discarded something instead of delivering it."""

    OVERSIZED_INBOUND = "oversized_inbound"
    SUBSCRIBER_OVERFLOW = "subscriber_overflow"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    PEER_QUEUE_FULL = "peer_queue_full"
    UNKNOWN_PROTOCOL = "unknown_protocol"
    HANDLER_ERROR = "handler_error"
    OVERSIZED_RESPONSE = "oversized_response"
    BAD_SIGNATURE = "bad_signature"
    """The frame's signature (or sender key) does not verify: forged or tampered."""
    SENDER_MISMATCH = "sender_mismatch"
    """A validly signed frame declares a peer id other than its key's."""
    REPLAYED = "replayed"
    """A validly signed frame at or below its sender's replay floor: an old frame sent again."""
    STALE_FRAME = "stale_frame"
    """A frame whose sequence (a microsecond clock) lies outside the freshness window."""
    WRONG_RESPONDER = "wrong_responder"
    """A response signed by a peer other than the one the request went to."""
    SENDER_TABLE_FULL = "sender_table_full"
    """Too many distinct registered members active at once to track a new one's sequences."""
    STRANGER_BUDGET = "stranger_budget"
    """A frame from a key that is no registered member, over the budget all such keys share."""


class TransportStats:
    """Mutable counters owned by one transport. Drops are logged, throttled per reason."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.published = 0
        self.delivered = 0
        self.bytes_published = 0
        self.bytes_delivered = 0
        self.requests_sent = 0
        self.requests_served = 0
        self.rejected_outbound = 0
        self.drops: Counter[DropReason] = Counter()

    def record_drop(self, reason: DropReason, detail: str) -> None:
        """Count one discarded message and log it (first few, then every thousandth)."""
        self.drops[reason] += 1
        count = self.drops[reason]
        if count <= _LOG_FIRST or count % _LOG_EVERY == 0:
            self._logger.warning("dropped (%s, #%d): %s", reason.value, count, detail)

    def dropped(self, reason: DropReason | None = None) -> int:
        """Drops for one reason, or in total."""
        if reason is None:
            return sum(self.drops.values())
        return self.drops[reason]

    def snapshot(self) -> dict[str, int]:
        """Plain counters for JSON output and dashboards."""
        counters = {
            "published": self.published,
            "delivered": self.delivered,
            "bytes_published": self.bytes_published,
            "bytes_delivered": self.bytes_delivered,
            "requests_sent": self.requests_sent,
            "requests_served": self.requests_served,
            "rejected_outbound": self.rejected_outbound,
        }
        counters.update({f"dropped_{reason.value}": self.drops[reason] for reason in DropReason})
        return counters
