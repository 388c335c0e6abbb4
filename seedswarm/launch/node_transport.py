"""A live node's transport, built from its plan (settings + network file), and the libp2p
re-dial loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from adapters.transport.base import Limits, Transport
from adapters.transport.core import TransportCore
from protocol.identity import NodeKey
from seedswarm.launch.node_plan import NodePlan

TRANSPORT_MESSAGE_LIMIT = 1 << 20
"""Bundles and log answers carry many envelopes; single envelopes keep the network's limit."""


def build_transport(plan: NodePlan, key: NodeKey) -> TransportCore:
    """The node's transport as its network file and settings describe it."""
    limits = Limits(max_message_bytes=TRANSPORT_MESSAGE_LIMIT)
    network_id = plan.network.network_id
    if plan.transport == "mqtt":
        from adapters.transport.mqtt import MqttConfig, MqttTransport

        host, port = plan.broker
        return MqttTransport(MqttConfig(host=host, port=port), key=key, network_id=network_id,
                             limits=limits)
    from adapters.transport.libp2p_host import Libp2pConfig
    from adapters.transport.libp2p_transport import Libp2pTransport

    settings = plan.settings
    p2p = Libp2pConfig(key_seed=key.to_bytes(), listen_host=settings.listen_host,
                       listen_port=settings.listen_port, bootstrap=plan.bootstrap(key.peer_id))
    return Libp2pTransport(p2p, network_id=network_id, limits=limits)


async def keep_connected(transport: Transport, bootstrap: Sequence[str]) -> None:
    """libp2p only: re-dial bootstrap peers that dropped (a restarted peer, a lost link)."""
    from adapters.transport.libp2p_transport import Libp2pTransport

    if not isinstance(transport, Libp2pTransport) or not bootstrap:
        return
    while True:
        connected = set(transport.connected_peers())
        for addr in bootstrap:
            if addr.rsplit("/p2p/", 1)[-1] not in connected:
                with contextlib.suppress(Exception):
                    await transport.connect(addr)
        await asyncio.sleep(1.0)  # connectivity has no event to wait on; re-check each second


