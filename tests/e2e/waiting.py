"""Waiting in end-to-end tests: poll a condition, and on a timeout show what the nodes said."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for(predicate: Callable[[], bool], limit_s: float, what: str, logs: list[Path]) -> None:
    """Poll `predicate` each second; after `limit_s`, fail with the tail of every log."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log}\n" + log.read_text(errors="replace")[-3000:]
                              for log in logs if log.exists())
            pytest.fail(f"timed out after {limit_s:.0f} s waiting for {what}\n{tails}")
        time.sleep(1.0)
