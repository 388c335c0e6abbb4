"""Bytes on the wire for bench.network, counted at py-libp2p's TCP streams, per owning node.

Every read and write of `TrioTCPStream` is added to the counter of the node that owns the
connection. The owner is a context variable set when a node's host starts, so streams created
inside that host's trio task tree (dialled or accepted) carry its name. With one node per
process every stream belongs to that node; in the in-process baseline the names keep the 16
hosts apart.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

UNOWNED = "?"
_OWNER: contextvars.ContextVar[str] = contextvars.ContextVar("bench_wire_owner", default=UNOWNED)
_installed: list[WireCounters] = []


@dataclass
class WireCounters:
    """Bytes read and written at py-libp2p's TCP streams, per owning node."""

    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)

    def snapshot(self, owner: str) -> dict[str, int]:
        """This owner's totals so far."""
        return {"sent": self.sent[owner], "received": self.received[owner]}


def install_counters() -> WireCounters:
    """Wrap TrioTCPStream's constructor, read and write (once per process); the counters."""
    if _installed:
        return _installed[0]
    from libp2p.io.trio import TrioTCPStream

    counters = WireCounters()
    init, read, write = TrioTCPStream.__init__, TrioTCPStream.read, TrioTCPStream.write

    def counted_init(stream: Any, *args: Any) -> None:
        init(stream, *args)
        stream.bench_owner = _OWNER.get()

    async def counted_write(stream: Any, data: bytes) -> None:
        await write(stream, data)
        counters.sent[getattr(stream, "bench_owner", UNOWNED)] += len(data)

    async def counted_read(stream: Any, n: int | None = None) -> bytes:
        data = await read(stream, n)
        counters.received[getattr(stream, "bench_owner", UNOWNED)] += len(data)
        return data

    TrioTCPStream.__init__ = counted_init  # type: ignore[method-assign,assignment]
    TrioTCPStream.write = counted_write  # type: ignore[method-assign,assignment]
    TrioTCPStream.read = counted_read  # type: ignore[method-assign,assignment]
    _installed.append(counters)
    return counters


def key_seed(label: str) -> bytes:
    """The bench's deterministic Ed25519 seed of node `label`."""
    return hashlib.sha256(f"bench-network/{label}".encode()).digest()


def owned_transport(name: str, network_id: str, port: int) -> Any:
    """A libp2p transport listening on `port` whose host runs (and opens streams) as `name`."""
    from adapters.transport.base import Limits
    from adapters.transport.libp2p_host import Libp2pConfig
    from adapters.transport.libp2p_transport import Libp2pTransport

    config = Libp2pConfig(key_seed=key_seed(name), listen_port=port)
    # the devnet's limit: bundles and log answers carry many envelopes
    transport = Libp2pTransport(config, network_id=network_id,
                                limits=Limits(max_message_bytes=1 << 20))
    node = transport._node
    original = node.run

    async def run_as_owner(*, task_status: Any) -> None:
        _OWNER.set(name)
        await original(task_status=task_status)

    node.run = run_as_owner  # type: ignore[method-assign]
    return transport
