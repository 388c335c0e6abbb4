"""The centralized baseline a swarm is compared with: AdamW on one node, same data budget.

Same base model, task and trainable parameters as the simulated run; one AdamW step per miner
batch of a round (`miners` steps of `samples_per_miner` samples per round), so after round r it
has seen as many samples as the swarm. First order, uncompressed, sequential: the quality
ceiling the swarm's validation curve is read against (`seedswarm simulate --plot`,
`python -m bench.convergence`).
"""

from __future__ import annotations

import torch

from protocol.netconfig import rule_default
from seedswarm.sim.config import SimConfig
from training.genesis import Genesis, build_genesis
from training.pretrain import validation_loss

ADAMW_LR = 3e-3
"""The baseline's learning rate (tuned once on pycode:finetune, lora:4)."""


def reference_batches(genesis: Genesis, steps: int, batch: int, seed: int) -> list[list[int]]:
    """`steps` batches of `batch` training sample indices, drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    n = genesis.task.num_train_samples()
    return [torch.randint(n, (batch,), generator=generator).tolist() for _ in range(steps)]


def adamw_curve(config: SimConfig, *, rounds: int | None = None, lr: float = ADAMW_LR,
                genesis: Genesis | None = None) -> list[float]:
    """Validation loss of centralized AdamW before round 0 and after each round-equivalent
    (index 0 = the base model), for `rounds` rounds (default: the config's)."""
    genesis = genesis or build_genesis(config)
    rounds = config.rounds if rounds is None else rounds
    samples = config.samples_per_miner or rule_default("samples_per_miner")
    params = [p for _, p in genesis.named]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    curve = [validation_loss(genesis.model, genesis.task)]
    batches = reference_batches(genesis, rounds * config.miners, samples, config.seed)
    genesis.model.train()
    for step, indices in enumerate(batches, start=1):
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(genesis.model.loss(genesis.task.train_batch(indices)))
        optimizer.step()
        if step % config.miners == 0:
            curve.append(validation_loss(genesis.model, genesis.task))
    return curve
