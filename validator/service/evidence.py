"""Slash evidence on disk: each fabrication a validator's audits prove, kept as the sender's
signed contribution under ``<state_dir>/proofs``, named for ``seedswarm slash`` (the evidence
hash a slash vote names is the SHA-256 of exactly these bytes)."""

from __future__ import annotations

import logging
from pathlib import Path

from protocol.errors import MessageRejected
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.signing import open_envelope
from validator.verification import FabricationProof

_log = logging.getLogger("validator.service")


def keep_proof(state_dir: Path, network: NetworkConfig, epoch: int,
               proof: FabricationProof) -> Path | None:
    """Write ``proof``'s signed contribution under ``state_dir/proofs`` (atomically); its path,
    or None for an envelope that does not open (the pipeline only proves what it opened)."""
    try:
        signed = open_envelope(proof.envelope, network_id=network.network_id,
                               max_size=network.max_message_bytes, expect=Contribution)
    except MessageRejected:
        return None
    sender = signed.message.sender.hex()
    target = state_dir / "proofs" / (
        f"epoch{epoch}-round{signed.message.round_index}-{sender[:16]}.bin")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(proof.envelope)
    tmp.replace(target)
    _log.warning("round %d: %s fabricated scalars %s; once epoch %d ended: seedswarm slash "
                 "%s %d --evidence-file %s", signed.message.round_index, sender[:16],
                 list(proof.indices[:8]), epoch, sender, epoch, target)
    return target
