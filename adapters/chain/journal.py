"""Write-ahead journal that makes an epoch's weight submission happen exactly once.

Before the first transaction for an epoch, the weights and salt are written (and fsynced) to a
small JSON file; transaction hashes are added as they are sent. After a crash, the journal says
which weights were committed and with which salt, so the restarted validator reveals those
instead of recomputing different ones, and never commits twice.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from adapters.chain.chain_errors import JournalConflict
from protocol.settlement.params import Commitment
from protocol.settlement.weight_vector import commit_digest

_VERSION = 1


@dataclass(frozen=True)
class JournalEntry:
    """What was (or is about to be) submitted for one epoch."""

    epoch: int
    weights: tuple[int, ...]
    salt: bytes
    commit_tx: str | None = None
    reveal_tx: str | None = None

    def with_commit_tx(self, tx_hash: str) -> JournalEntry:
        """A copy recording the commit transaction."""
        return replace(self, commit_tx=tx_hash)

    def with_reveal_tx(self, tx_hash: str) -> JournalEntry:
        """A copy recording the reveal transaction."""
        return replace(self, reveal_tx=tx_hash)

    def digest(self, validator: str) -> bytes:
        """The commitment `validator` sends for these weights and salt."""
        return commit_digest(self.epoch, validator, self.weights, self.salt)

    def is_committed(self, validator: str, onchain: Commitment) -> bool:
        """True when the chain already holds this entry's commitment, so nothing is to be sent.

        Raises JournalConflict when the chain holds another one: the journal was lost or
        belongs elsewhere, and revealing these weights would be refused (RevealMismatch).
        """
        if not onchain.exists:
            return False
        if onchain.digest != self.digest(validator):
            raise JournalConflict(f"epoch {self.epoch}: on-chain commitment is not the journal's")
        return True


class SubmissionJournal:
    """Entries per epoch for one (chain, incentives contract, validator) scope."""

    def __init__(self, path: Path, scope: str) -> None:
        self._path = path
        self._scope = scope
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """Where the journal lives."""
        return self._path

    def get(self, epoch: int) -> JournalEntry | None:
        """The entry for `epoch`, if one was written."""
        with self._lock:
            return _entry_of(self._read(), epoch)

    def fix(self, epoch: int, weights: Sequence[int]) -> JournalEntry:
        """The entry for `epoch`, written first (durably, with a fresh salt) from `weights`
        when there is none: the first call fixes an epoch's weights, and later calls, in this
        process or after a restart, get the journaled ones back. Write-ahead: the salt must
        survive a crash right after the commitment is sent."""
        with self._lock:
            state = self._read()
            existing = _entry_of(state, epoch)
            if existing is not None:
                return existing
            entry = JournalEntry(epoch, tuple(int(w) for w in weights), secrets.token_bytes(32))
            state["epochs"][str(epoch)] = _record_of(entry)
            self._write(state)
            return entry

    def require(self, epoch: int) -> JournalEntry:
        """The entry for `epoch`; JournalConflict when none was written (nothing to reveal)."""
        entry = self.get(epoch)
        if entry is None:
            raise JournalConflict(f"epoch {epoch}: nothing journaled, cannot reveal")
        return entry

    def put(self, entry: JournalEntry) -> None:
        """Stores `entry` durably (atomic replace, fsynced)."""
        with self._lock:
            state = self._read()
            state["epochs"][str(entry.epoch)] = _record_of(entry)
            self._write(state)

    def _read(self) -> dict[str, Any]:
        if not self._path.exists():
            return {"version": _VERSION, "scope": self._scope, "epochs": {}}
        state: dict[str, Any] = json.loads(self._path.read_text(encoding="utf-8"))
        if state.get("scope") != self._scope:
            raise JournalConflict(
                f"journal {self._path} belongs to {state.get('scope')!r}, not {self._scope!r}"
            )
        return state

    def _write(self, state: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _entry_of(state: dict[str, Any], epoch: int) -> JournalEntry | None:
    raw = state["epochs"].get(str(epoch))
    if raw is None:
        return None
    return JournalEntry(
        epoch=epoch,
        weights=tuple(int(w) for w in raw["weights"]),
        salt=bytes.fromhex(raw["salt"]),
        commit_tx=raw.get("commit_tx"),
        reveal_tx=raw.get("reveal_tx"),
    )


def _record_of(entry: JournalEntry) -> dict[str, Any]:
    record = asdict(entry)
    record["salt"] = entry.salt.hex()
    record["weights"] = list(entry.weights)
    del record["epoch"]
    return record
