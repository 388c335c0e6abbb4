"""What a slash vote names: the evidence hash of a fabricated contribution, and the rule that
decides when the votes slash.

A validator that recomputed a miner's contribution and found it fabricated votes on chain for
(miner, epoch, evidence hash); the evidence hash is the SHA-256 of the contribution exactly as
the miner signed it, so every validator holding the same signed bytes votes for the same
accusation and anyone can check the proof (signature, then recomputation) for themselves.
The Registry's `voteSlash` tallies those votes with each voter's stake at the epoch's end and
slashes once they pass half of the validator stake at that time (`slash_passes`), the rule
settlement's quorum uses.
"""

from __future__ import annotations

import hashlib


def evidence_hash(signed_contribution: bytes) -> bytes:
    """The 32-byte SHA-256 of the signed contribution's bytes: what a slash vote names."""
    if not signed_contribution:
        raise ValueError("no evidence: pass the signed contribution's bytes as received")
    return hashlib.sha256(signed_contribution).digest()


def slash_passes(support: int, total_stake: int) -> bool:
    """Whether `support` (voting stake at the epoch's end) is more than half of `total_stake`
    (the validator stake at the epoch's end): Registry.voteSlash's threshold."""
    return support * 2 > total_stake
