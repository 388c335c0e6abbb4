"""File barriers between bench.network's nodes and its coordinator (any process layout).

A node arrives at a stage by writing `<dir>/<stage>/<name>`; once every node has arrived the
coordinator writes `<dir>/<stage>.go` with a JSON payload (e.g. the genesis time), which every
node reads and returns. Files work the same whether the nodes are 16 processes or 16 tasks.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adapters.storage.logstore import write_atomic
from protocol.errors import SeedswarmError

POLL_S = 0.02


class BarrierTimeout(SeedswarmError):
    """Not every node reached a stage in time."""


async def arrive(directory: Path, stage: str, name: str, timeout_s: float) -> dict[str, Any]:
    """Mark `name` as arrived at `stage`; wait for the coordinator's go; its payload."""
    (directory / stage).mkdir(parents=True, exist_ok=True)
    write_atomic(directory / stage / name, b"1")
    go = directory / f"{stage}.go"
    deadline = time.monotonic() + timeout_s
    while not go.exists():
        if time.monotonic() > deadline:
            raise BarrierTimeout(f"{name}: no go for stage {stage!r} after {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)
    payload: dict[str, Any] = json.loads(go.read_text(encoding="utf-8"))
    return payload


async def release(directory: Path, stage: str, names: Sequence[str],
                  payload: Callable[[], dict[str, Any]], timeout_s: float,
                  check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Wait until every node arrived at `stage` (`check` raises if one died); write the go."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [n for n in names if not (directory / stage / n).exists()]
        if not missing:
            break
        check()
        if time.monotonic() > deadline:
            raise BarrierTimeout(f"stage {stage!r}: still waiting for {', '.join(missing)}")
        await asyncio.sleep(POLL_S)
    body = payload()
    write_atomic(directory / f"{stage}.go", json.dumps(body).encode())
    return body
