"""A live node's transport, built from its plan (settings + network file), and the libp2p
re-dial loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.transport.base import Limits, Subscription, Transport, TransportError
from adapters.transport.core import TransportCore
from protocol.identity import NodeKey
from seedswarm.launch.node_plan import NodePlan

if TYPE_CHECKING:
    from adapters.transport.libp2p_transport import Libp2pTransport

OUTAGE_ROUNDS = 5
"""A node keeps trying a lost broker or chain for this many rounds, then exits non-zero so that
its supervisor restarts it (a node without a network is a zombie nobody notices)."""
MIN_OUTAGE_S = 30.0


def outage_limit_s(round_length: float) -> float:
    """How long a node waits out a lost broker or chain (`OUTAGE_ROUNDS` rounds, at least
    `MIN_OUTAGE_S`)."""
    return max(MIN_OUTAGE_S, OUTAGE_ROUNDS * round_length)


TRANSPORT_MESSAGE_LIMIT = 1 << 20
"""Bundles and log answers carry many envelopes; single envelopes keep the network's limit."""


def build_transport(plan: NodePlan, key: NodeKey) -> TransportCore:
    """The node's transport as its network file and settings describe it."""
    limits = Limits(max_message_bytes=TRANSPORT_MESSAGE_LIMIT)
    network_id = plan.network.network_id
    if plan.transport == "mqtt":
        from adapters.transport.mqtt import MqttConfig, MqttTransport

        host, port = plan.broker
        config = MqttConfig(host=host, port=port, password=plan.settings.broker_password,
                            reconnect_limit_s=outage_limit_s(plan.network.round_length))
        return MqttTransport(config, key=key, network_id=network_id, limits=limits)
    from adapters.transport.libp2p_host import Libp2pConfig
    from adapters.transport.libp2p_transport import Libp2pTransport

    settings = plan.settings
    p2p = Libp2pConfig(key_seed=key.to_bytes(), listen_host=settings.listen_host,
                       listen_port=settings.listen_port, bootstrap=plan.bootstrap(key.peer_id))
    return Libp2pTransport(p2p, network_id=network_id, limits=limits)


PEERS_TOPIC = "peers"
"""libp2p: where nodes announce the addresses they listen on (peer exchange)."""
MAX_DIALS_PER_ANNOUNCEMENT = 8


async def keep_connected(transport: Transport, bootstrap: Sequence[str],
                         interval_s: float = 1.0) -> None:
    """libp2p only: keep every node reachable directly, not just through the bootstrap peers.

    Re-dials bootstrap peers that dropped (a restarted peer, a lost link), announces this
    node's listen addresses on `PEERS_TOPIC` and dials the nodes others announce: direct
    requests (catch-up, the genesis checkpoint, receipts) need a connection, gossip does not.
    An announcement counts only for the peer that signed it (libp2p authenticates the sender).
    """
    from adapters.transport.libp2p_transport import Libp2pTransport

    if not isinstance(transport, Libp2pTransport):
        return
    announcements = await transport.subscribe(PEERS_TOPIC)
    async with asyncio.TaskGroup() as group:
        group.create_task(_dial_announced(transport, announcements))
        while True:
            connected = set(transport.connected_peers())
            for addr in bootstrap:
                if addr.rsplit("/p2p/", 1)[-1] not in connected:
                    with contextlib.suppress(Exception):
                        await transport.connect(addr)
            own = [a for a in transport.listen_addrs if "/ip4/0.0.0.0/" not in a]
            # gossip ids a message by its bytes: the time makes each announcement a new one
            announcement = {"addrs": own, "at": time.time_ns()}
            with contextlib.suppress(TransportError):
                await transport.publish(PEERS_TOPIC, json.dumps(announcement).encode())
            await asyncio.sleep(interval_s)  # connectivity has no event to wait on


async def _dial_announced(transport: Libp2pTransport, announcements: Subscription) -> None:
    async for delivery in announcements:
        try:
            announcement = json.loads(delivery.data)
        except ValueError:
            continue
        addrs = announcement.get("addrs") if isinstance(announcement, dict) else None
        if not isinstance(addrs, list):
            continue
        sender, connected = delivery.from_peer, set(transport.connected_peers())
        if sender == transport.peer_id or sender in connected:
            continue
        for addr in addrs[:MAX_DIALS_PER_ANNOUNCEMENT]:
            if isinstance(addr, str) and addr.endswith(f"/p2p/{sender}"):
                with contextlib.suppress(Exception):
                    await transport.connect(addr)
                    break
