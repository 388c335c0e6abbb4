"""Centralized first-order pretraining: the base model the swarm then fine-tunes.

AdamW with linear warm-up and cosine decay, random training batches from a seeded generator,
gradient clipping. Deterministic within a process for a given config (this is not a consensus
computation: the resulting checkpoint's hash is what the network agrees on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from protocol.domain_types import ModelHash
from protocol.errors import ConfigError
from training.checkpoint import save_checkpoint, state_hash
from training.model import GPT, GPTConfig, eval_loss
from training.tasks import Task, make_task

ProgressCallback = Callable[[int, float], None]
"""Called after each optimizer step with (steps done, training loss of that step)."""


@dataclass(frozen=True)
class PretrainConfig:
    """A pretraining run. ``seed`` fixes model init and batch order; ``data_seed`` fixes the
    task's train/validation split (a network-wide setting)."""

    task: str = "pycode:pretrain"
    steps: int = 500
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    data_seed: int = 0
    context: int = 64
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("pretrain needs steps >= 0, batch_size >= 1 and lr > 0")

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(
            vocab_size=vocab_size,
            context=self.context,
            width=self.width,
            depth=self.depth,
            heads=self.heads,
            mlp_ratio=self.mlp_ratio,
        )


@dataclass(frozen=True)
class PretrainHistory:
    """What a run did: per-step training loss and validation loss before and after."""

    train_loss: tuple[float, ...]
    val_loss_before: float
    val_loss_after: float
    seconds: float
    num_parameters: int
    task_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(step: int, config: PretrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def validation_loss(model: GPT, task: Task) -> float:
    """Mean loss on the task's fixed validation batch, in eval mode."""
    return eval_loss(model, task.validation_batch())


def make_optimizer(model: GPT, config: PretrainConfig) -> torch.optim.AdamW:
    """AdamW decaying matrices only (not biases or LayerNorm gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


def pretrain(
    config: PretrainConfig,
    *,
    task: Task | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[GPT, ModelHash, PretrainHistory]:
    """Train a fresh model on ``config.task`` (or the given ``task``).

    Returns (model in eval mode, its state hash, history).
    """
    started = time.perf_counter()
    task = task or make_task(
        config.task, context=config.context, seed=config.data_seed, max_bytes=config.max_bytes
    )
    model = GPT(config.model_config(task.vocab_size), seed=config.seed)
    before = validation_loss(model, task)
    optimizer = make_optimizer(model, config)
    batches = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    model.train()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        indices = torch.randint(task.num_train_samples(), (config.batch_size,), generator=batches)
        loss = model.loss(task.train_batch(indices.tolist()))
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, losses[-1])
    model.eval()
    history = PretrainHistory(
        train_loss=tuple(losses),
        val_loss_before=before,
        val_loss_after=validation_loss(model, task),
        seconds=time.perf_counter() - started,
        num_parameters=model.num_parameters(),
        task_fingerprint=task.fingerprint(),
    )
    return model, state_hash(model), history


def save_pretrained(
    path: str | Path, model: GPT, config: PretrainConfig, history: PretrainHistory
) -> ModelHash:
    """Save a pretrained model with the metadata a swarm's genesis needs; returns its hash."""
    meta = {
        "task": config.task,
        "data_seed": config.data_seed,
        "step": len(history.train_loss),
        "task_fingerprint": history.task_fingerprint,
        "val_loss": history.val_loss_after,
        "pretrain": asdict(config),
    }
    return save_checkpoint(path, model, model.config, meta)
