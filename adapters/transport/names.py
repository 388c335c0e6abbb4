"""Validation of network ids, topics and request protocol names.

Names are restricted to a conservative alphabet so they embed safely in MQTT topic levels,
libp2p protocol ids and gossipsub topics alike (no wildcards, no empty levels).
"""

from __future__ import annotations

import re

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*")
_SINGLE_SEGMENT = re.compile(_SEGMENT)
MAX_NAME_LENGTH = 128


def check_segment(value: str, kind: str) -> str:
    """Return `value` if it is one segment of letters, digits, '.', '_', '-'."""
    if len(value) > MAX_NAME_LENGTH or not _SINGLE_SEGMENT.fullmatch(value):
        raise ValueError(f"invalid {kind} {value!r}")
    return value


def check_network_id(network_id: str) -> str:
    """Return `network_id` if valid (a single segment)."""
    return check_segment(network_id, "network id")


def check_name(name: str, kind: str = "topic") -> str:
    """Return a topic or protocol name if valid ('/'-separated segments of the same alphabet)."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}")
    return name
