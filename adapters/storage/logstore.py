"""Durable files for a node's state: atomic writes and the on-disk certified log.

Every file is written to a temporary name in the same directory, fsynced, renamed over the
target and the directory fsynced, so after a kill -9 at any instant a path holds either its old
content or its new content, never a torn mix. Temporary leftovers are ignored and swept.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

_ENTRY = re.compile(r"round-(\d{12})\.bundle")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data` so that a crash leaves the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RoundLogStore:
    """One file per certified round under `directory` (the bundle bytes, as gossiped)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def path(self, round_index: int) -> Path:
        """Where the bundle of `round_index` lives."""
        return self.directory / f"round-{round_index:012d}.bundle"

    def put(self, round_index: int, raw: bytes) -> None:
        """Store the bundle of `round_index` durably (replacing an earlier copy)."""
        write_atomic(self.path(round_index), raw)

    def get(self, round_index: int) -> bytes | None:
        """The stored bundle of `round_index`, if any."""
        try:
            return self.path(round_index).read_bytes()
        except FileNotFoundError:
            return None

    def rounds(self) -> list[int]:
        """Rounds with a stored bundle, ascending."""
        found = (_ENTRY.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m is not None)

    def consecutive_from(self, start: int, max_rounds: int, max_bytes: int) -> list[bytes]:
        """Bundles of rounds start, start + 1, ... while present and within both limits."""
        out: list[bytes] = []
        size = 0
        for round_index in range(start, start + max_rounds):
            raw = self.get(round_index)
            if raw is None or size + len(raw) + 8 > max_bytes:
                break
            out.append(raw)
            size += len(raw) + 8
        return out
