"""One key, one node: a node holds an exclusive lock on its state directory and its keystore.

Two processes signing with one key would equivocate (two contributions per round from one
miner, two endorsements from one validator), and two sharing a state directory would corrupt
each other's checkpoints and journal. The second one is refused at start with who holds it.
Locks are advisory `flock`s: the kernel releases them when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from protocol.errors import ConfigError

LOCK_NAME = ".seedswarm-node.lock"


@contextlib.contextmanager
def hold(*directories: Path) -> Iterator[None]:
    """Hold the node lock of each of `directories` (created if missing) until exit."""
    with contextlib.ExitStack() as stack:
        for directory in directories:
            stack.enter_context(_lock(directory))
        yield


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(
                f"{directory} is in use by a running node (pid {holder}): one key and one "
                "state directory run one node; stop that one first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
