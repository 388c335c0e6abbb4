"""A small GPT-style language model: the thing the swarm trains.

Pre-LayerNorm transformer blocks (causal self-attention, GELU MLP), learned position
embeddings, and an output head separate from the token embedding (untied), so that ``last:k``
training moves the head without also moving the input embedding. Defaults are sized to train
in minutes on two CPU cores.

Parameter names are part of the checkpoint format and of the canonical trainable order:
``tok_emb.weight, pos_emb.weight, blocks.<i>.{ln1, attn.qkv, attn.proj, ln2, mlp.fc, mlp.out}
.{weight, bias}, ln_f.{weight, bias}, head.weight``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from protocol.errors import ConfigError
from training.tasks.task import Batch

INIT_STD = 0.02


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT model (everything needed to rebuild it from a checkpoint)."""

    vocab_size: int = 256
    context: int = 64
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for field in ("vocab_size", "context", "width", "depth", "heads", "mlp_ratio"):
            if getattr(self, field) < 1:
                raise ConfigError(f"GPTConfig.{field} must be positive, got {getattr(self, field)}")
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Rebuild from ``to_dict()`` output; unknown keys are an error, not silently dropped."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown GPTConfig fields: {sorted(unknown)}")
        return cls(**data)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(batch, length, width))
        return out


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.width, config.mlp_ratio * config.width)
        self.out = nn.Linear(config.mlp_ratio * config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(F.gelu(self.fc(x)))
        return out


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.width)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.width)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        out: torch.Tensor = x + self.drop(self.mlp(self.ln2(x)))
        return out


class GPT(nn.Module):
    """Decoder-only transformer over ``config.vocab_size`` tokens."""

    def __init__(self, config: GPTConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.width)
        self.pos_emb = nn.Embedding(config.context, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.ln_f = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """GPT-2 style init from ``seed`` alone (a private generator; global RNG untouched)."""
        generator = torch.Generator().manual_seed(seed)
        residual_std = INIT_STD / math.sqrt(2 * self.config.depth)
        for name, param in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.out.weight")):
                nn.init.normal_(param, 0.0, residual_std, generator=generator)
            elif param.dim() >= 2:
                nn.init.normal_(param, 0.0, INIT_STD, generator=generator)
            elif ".ln" in name or name.startswith("ln_f"):
                nn.init.ones_(param) if name.endswith("weight") else nn.init.zeros_(param)
            else:
                nn.init.zeros_(param)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, length, vocab) for int64 ``inputs`` of shape (batch, length)."""
        length = inputs.shape[1]
        if length > self.config.context:
            raise ConfigError(f"sequence length {length} exceeds context {self.config.context}")
        positions = torch.arange(length, device=inputs.device)
        x = self.tok_emb(inputs) + self.pos_emb(positions)
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.ln_f(x))
        return logits

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) over every position of ``batch``."""
        logits = self.forward(batch.inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def eval_loss(model: GPT, batch: Batch) -> float:
    """``model``'s loss on ``batch`` in eval mode, without gradients; the mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float(model.loss(batch))
    finally:
        model.train(was_training)
