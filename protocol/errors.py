"""The project's own error types.

Everything a participant rejects is rejected with one of these, carrying a machine-readable
reason, so that callers can count and log rejections without parsing strings.
"""

from __future__ import annotations

import enum


class SeedswarmError(Exception):
    """Base of every error the project raises on purpose."""


class RejectReason(enum.Enum):
    """Why an incoming message was refused."""

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_SIGNATURE = "bad_signature"
    WRONG_NETWORK = "wrong_network"
    WRONG_ROUND = "wrong_round"
    REPLAYED = "replayed"
    DUPLICATE = "duplicate"
    STALE_SEQUENCE = "stale_sequence"
    OUT_OF_BOUNDS = "out_of_bounds"
    UNKNOWN_SENDER = "unknown_sender"
    NOT_FINAL = "not_final"
    """A certified round without endorsements from a stake majority (protocol.finality)."""


class MessageRejected(SeedswarmError):
    """A message failed decoding, verification or replay checks."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class KeystoreError(SeedswarmError):
    """A keystore could not be read, decrypted or written."""


class ConsensusError(SeedswarmError):
    """A consensus rule was violated (e.g. a model hash did not match its certificate)."""


class ConfigError(SeedswarmError):
    """A configuration value is missing or invalid."""


class SettlementError(SeedswarmError):
    """A settlement computation cannot be done (an empty reward tree, an unknown account)."""


class InvalidWeights(SettlementError):
    """A weight vector cannot be normalised or does not fit the network."""
