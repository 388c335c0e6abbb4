"""A node's settings resolved against its network's join bundle: what it will actually run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapters.chain.deployment import Deployment
from protocol.netconfig import NetworkConfig
from seedswarm.launch.join_bundle import JoinBundle
from seedswarm.launch.settings import NodeSettings

GENESIS_COPY = "genesis.safetensors"
"""The node's own copy of the genesis checkpoint, in its state directory (it serves it)."""


@dataclass(frozen=True)
class NodePlan:
    """Node-local settings plus the network they join."""

    settings: NodeSettings
    bundle: JoinBundle

    @classmethod
    def load(cls, settings: NodeSettings) -> NodePlan:
        return cls(settings, JoinBundle.load(settings.network))

    @property
    def network(self) -> NetworkConfig:
        return self.bundle.network

    @property
    def chain_url(self) -> str:
        return self.settings.chain or self.bundle.chain.url

    @property
    def deployment(self) -> Deployment:
        return self.bundle.chain.deployment

    @property
    def genesis_time(self) -> float:
        return self.bundle.genesis.time

    @property
    def transport(self) -> str:
        return self.bundle.peers.transport

    @property
    def broker(self) -> tuple[str, int]:
        """MQTT: (host, port) of the broker, the settings' override first."""
        if self.settings.broker:
            from seedswarm.launch.join_bundle import PeerInfo

            return PeerInfo("mqtt", broker=self.settings.broker).broker_host_port
        return self.bundle.peers.broker_host_port

    def bootstrap(self, own_peer_id: str) -> tuple[str, ...]:
        """libp2p: every bootstrap multiaddr, this node's own left out."""
        return tuple(a for a in (*self.settings.bootstrap, *self.bundle.peers.bootstrap)
                     if not a.endswith(f"/p2p/{own_peer_id}"))

    @property
    def genesis_copy(self) -> Path:
        return self.settings.state_dir / GENESIS_COPY

    def local_checkpoint(self) -> Path | None:
        """A genesis checkpoint on this machine: the node's copy, else the bundle's file."""
        if self.genesis_copy.exists():
            return self.genesis_copy
        named = self.bundle.checkpoint_path(self.settings.network)
        return named if named is not None and named.exists() else None
