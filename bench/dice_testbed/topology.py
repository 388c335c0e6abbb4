"""Gossip topologies as row-stochastic mixing matrices, and hop distances on them."""

from __future__ import annotations

from collections import deque

import torch

from protocol.errors import ConfigError


def ring(n: int) -> torch.Tensor:
    """Each node averages itself and its two ring neighbours, 1/3 each."""
    if n < 3:
        raise ConfigError(f"a ring needs at least 3 nodes, got {n}")
    w = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in (i - 1, i, i + 1):
            w[i, j % n] = 1.0 / 3.0
    return w


def exponential(n: int) -> torch.Tensor:
    """Node i averages i and i + 2^m (mod n) for 2^m < n, equal weights (directed; DICE's graph)."""
    if n < 2:
        raise ConfigError(f"an exponential graph needs at least 2 nodes, got {n}")
    offsets = [0]
    while 2 ** (len(offsets) - 1) < n:
        offsets.append(2 ** (len(offsets) - 1))
    w = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for off in offsets:
            w[i, (i + off) % n] += 1.0 / len(offsets)
    return w


TOPOLOGIES = {"ring": ring, "exponential": exponential}


def hop_distances(mixing: torch.Tensor) -> torch.Tensor:
    """dist[j, k]: gossip rounds before node j's model first reaches node k (-1: never).

    Node j's model reaches k in one round when k averages it, i.e. W[k, j] > 0.
    """
    n = mixing.shape[0]
    dist = torch.full((n, n), -1, dtype=torch.long)
    for source in range(n):
        dist[source, source] = 0
        queue = deque([source])
        while queue:
            j = queue.popleft()
            for k in range(n):
                if mixing[k, j] > 0 and dist[source, k] < 0:
                    dist[source, k] = dist[source, j] + 1
                    queue.append(k)
    return dist
