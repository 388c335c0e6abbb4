"""Ground truth by counterfactual re-runs versus DICE-E estimates, on the testbed swarm.

For a measured round t and every source node j, the ground truth (DICE Def. 2/3) is
L_val(theta_k^{t+s}) - L_val(theta_{k without j}^{t+s}) for each node k exactly s hops from j,
where "without j" re-runs rounds t..t+s with node j's round-t displacement removed (s = 0 is
the self term L_val(theta_j^{t+1/2}) - L_val(theta_j^t)). All n counterfactuals and the factual
run advance together as one batched tensor.

Estimators (validator.influence), each (W^s)[k, j] times a derivative at the factual
theta_k^{t+s}:
* ``exact``: grad L_val^T delta_j by autograd (DICE-E);
* ``fd``: ``realized_influence``, a central finite difference along the realized displacement;
* ``seed`` (SPSA mode): coeff_j * D_k(s_j), D from ``directional_derivative`` along z(s_j).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bench.dice_testbed.data import DataSpec, make_node_data
from bench.dice_testbed.mlp import MLPShape
from bench.dice_testbed.topology import TOPOLOGIES, hop_distances
from bench.dice_testbed.toy_swarm import Mode, Step, Swarm
from protocol.errors import ConfigError
from validator.influence import (
    cascade_influence,
    directional_derivative,
    mixing_power,
    realized_influence,
)


@dataclass(frozen=True)
class DiceConfig:
    """One testbed run. Defaults are the fast (test-suite) size."""

    topology: str = "ring"
    mode: Mode = Mode.SGD
    nodes: int = 16
    hidden: int = 16
    lr: float = 0.05
    batch: int = 16
    warmup: int = 60
    measure: int = 4
    hops: int = 3
    spsa_eps: float = 1e-4
    seed_fd_eps: float = 1e-4
    permuted: tuple[int, ...] = (5,)
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0


@dataclass(frozen=True)
class Record:
    """One (round, hop, source, receiver) comparison."""

    round_index: int
    hop: int
    source: int
    receiver: int
    truth: float
    estimates: dict[str, float]


def build_swarm(config: DiceConfig) -> Swarm:
    """The swarm a config describes."""
    if config.topology not in TOPOLOGIES:
        raise ConfigError(f"unknown topology {config.topology!r}; known: {sorted(TOPOLOGIES)}")
    data = make_node_data(config.data, config.nodes, config.permuted)
    shape = MLPShape(config.data.features, config.hidden, config.data.classes)
    return Swarm(shape=shape, data=data, mixing=TOPOLOGIES[config.topology](config.nodes),
                 mode=config.mode, lr=config.lr, batch=config.batch,
                 spsa_eps=config.spsa_eps, seed=config.seed)


def counterfactual_losses(swarm: Swarm, theta: torch.Tensor, step: Step, round_index: int,
                          hops: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Validation losses [n + 1, n] after 1..hops rounds (row 0 factual, row 1 + j without j's
    round-t displacement) and the factual states [n, d] at those rounds."""
    n = swarm.nodes
    states = theta.expand(n + 1, *theta.shape).clone()
    moves = step.displacement.expand(n + 1, *theta.shape).clone()
    moves[torch.arange(1, n + 1), torch.arange(n)] = 0.0
    states = swarm.mix(states + moves)
    losses, factual = [swarm.validation_loss(states)], [states[0].clone()]
    for s in range(1, hops):
        states = swarm.advance(states, round_index + s)
        losses.append(swarm.validation_loss(states))
        factual.append(states[0].clone())
    return losses, factual


def _node_loss(swarm: Swarm, param: torch.Tensor) -> float:
    return float(swarm.validation_loss(param))


def _derivatives(swarm: Swarm, state: torch.Tensor, receivers: list[int], along: torch.Tensor,
                 seed_form: bool, eps: float) -> torch.Tensor:
    """Per-node derivative of L_val along ``along`` (zero for nodes not in ``receivers``)."""
    out = torch.zeros(swarm.nodes, dtype=torch.float64)
    for k in receivers:
        param = state[k].clone()

        def loss(p: torch.Tensor = param) -> float:
            return _node_loss(swarm, p)

        if seed_form:
            out[k] = directional_derivative(loss, [param], [along], eps)
        else:
            out[k] = realized_influence(loss, [param], [along])
    return out


def measure_round(swarm: Swarm, config: DiceConfig, theta: torch.Tensor, round_index: int,
                  dist: torch.Tensor) -> list[Record]:
    """All comparisons for the displacements made in ``round_index`` from states ``theta``."""
    n = swarm.nodes
    step = swarm.local_step(theta, round_index)
    disp = step.displacement
    losses, factual = counterfactual_losses(swarm, theta, step, round_index, config.hops)
    states = [theta, *factual]
    base = swarm.validation_loss(theta)
    self_truth = swarm.validation_loss(theta + disp) - base
    records: list[Record] = []
    for s in range(config.hops + 1):
        power = mixing_power(swarm.mixing, s)
        grads = swarm.validation_gradient(states[s])
        exact = power.T * (disp @ grads.T)  # [j, k] = (W^s)[k, j] grad_k . delta_j
        for j in range(n):
            receivers = [k for k in range(n) if int(dist[j, k]) == s]
            if not receivers:
                continue
            estimates = {"exact": exact[j]}
            if step.coeffs is None:
                d = _derivatives(swarm, states[s], receivers, disp[j], False, 0.0)
                estimates["fd"] = cascade_influence(swarm.mixing, j, s, d)
            else:
                assert step.directions is not None
                d = _derivatives(swarm, states[s], receivers, step.directions[j], True,
                                 config.seed_fd_eps)
                estimates["seed"] = cascade_influence(swarm.mixing, j, s, d,
                                                      coeff=float(step.coeffs[j]))
            for k in receivers:
                truth = self_truth[j] if s == 0 else losses[s - 1][0, k] - losses[s - 1][1 + j, k]
                records.append(Record(round_index, s, j, k, float(truth),
                                      {name: float(v[k]) for name, v in estimates.items()}))
    return records


def run_testbed(config: DiceConfig) -> list[Record]:
    """Warm up, then measure ``config.measure`` consecutive rounds."""
    swarm = build_swarm(config)
    dist = hop_distances(swarm.mixing)
    theta = swarm.shape.init(config.seed).expand(config.nodes, -1).clone()
    for t in range(config.warmup):
        theta = swarm.advance(theta, t)
    records: list[Record] = []
    for t in range(config.warmup, config.warmup + config.measure):
        records.extend(measure_round(swarm, config, theta, t, dist))
        theta = swarm.advance(theta, t)
    return records
