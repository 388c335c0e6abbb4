"""What the swarm trains: the whole model, LoRA adapters, or the last blocks.

Specs (``TrainableSpec.parse``):

* ``full``: every parameter;
* ``lora:<rank>[:<alpha>]``: low-rank adapters on every block's ``attn.qkv``, ``attn.proj``,
  ``mlp.fc`` and ``mlp.out``; the layer computes ``W x + b + (alpha / rank) · B A x``. Only the
  adapters train. ``A`` (rank × in) is drawn from the seed, ``B`` (out × rank) starts at zero,
  so the adapted model computes exactly what the base model does. ``alpha`` defaults to the
  rank (scale 1).
* ``last:<k>``: the last ``k`` blocks, the final LayerNorm and the head (``last:0``: only
  the final LayerNorm and the head).

Canonical order: the order of ``model.named_parameters()``, i.e. modules in the order they are
defined (embeddings, blocks 0..depth-1 and inside each block ln1, attn.qkv, attn.proj, ln2,
mlp.fc, mlp.out, then ln_f and head), and inside a layer ``weight, bias, lora_A, lora_B``.
The tensor index in this order is part of every random direction's key.

Since the genesis model is (base checkpoint hash, trainable spec), the adapters' initial values
are a consensus matter: ``A`` comes from SHAKE-256 of (seed, layer name) turned into floats by
exact integer-to-float steps, never from a torch RNG whose output may depend on the CPU.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from protocol.errors import ConfigError
from training.model import GPT

TrainableKind = Literal["full", "lora", "last"]
LORA_TARGETS = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.out")


@dataclass(frozen=True)
class TrainableSpec:
    """Which parameters train; ``value`` is the LoRA rank or the number of last blocks."""

    kind: TrainableKind
    value: int = 0
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("full", "lora", "last"):
            raise ConfigError(f"unknown trainable kind {self.kind!r}")
        if self.kind == "lora" and self.value < 1:
            raise ConfigError(f"LoRA rank must be positive, got {self.value}")
        if self.kind == "last" and self.value < 0:
            raise ConfigError(f"last:<k> needs k >= 0, got {self.value}")
        if self.alpha is not None and (self.kind != "lora" or self.alpha <= 0):
            raise ConfigError("alpha is a positive LoRA-only setting")

    @classmethod
    def parse(cls, text: str) -> TrainableSpec:
        """``full``, ``lora:<rank>[:<alpha>]`` or ``last:<k>``."""
        kind, *args = text.strip().split(":")
        try:
            if kind == "full" and not args:
                return cls("full")
            if kind == "lora" and len(args) in (1, 2):
                alpha = float(args[1]) if len(args) == 2 else None
                return cls("lora", int(args[0]), alpha)
            if kind == "last" and len(args) == 1:
                return cls("last", int(args[0]))
        except ValueError as exc:
            raise ConfigError(f"bad trainable spec {text!r}: {exc}") from exc
        raise ConfigError(f"bad trainable spec {text!r}; use full, lora:<rank>[:<alpha>], last:<k>")

    @property
    def lora_alpha(self) -> float:
        return float(self.value) if self.alpha is None else self.alpha

    def __str__(self) -> str:
        if self.kind == "full":
            return "full"
        if self.kind == "lora" and self.alpha is not None:
            return f"lora:{self.value}:{self.alpha:g}"
        return f"{self.kind}:{self.value}"


class LoRALinear(nn.Linear):
    """A Linear layer with a low-rank adapter; keeps the base layer's own parameter objects, so
    ``weight``/``bias`` keep their names and the base model's hash is unchanged."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.rank = rank
        self.alpha = alpha
        self.lora_A = nn.Parameter(torch.zeros(rank, self.in_features))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = F.linear(F.linear(x, self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + (self.alpha / self.rank) * low_rank


def adapter_init(seed: int, name: str, shape: tuple[int, int]) -> torch.Tensor:
    """Uniform in ±1/sqrt(fan_in) (PyTorch's Linear default), bit-identical on every machine."""
    count = shape[0] * shape[1]
    stream = hashlib.shake_256(f"lora-A|{seed}|{name}".encode()).digest(4 * count)
    words = np.frombuffer(stream, dtype="<u4")
    # 24-bit integers convert to float32 exactly; the scalings are single correctly-rounded ops.
    unit = (words >> 8).astype(np.float32) * np.float32(2.0**-24)
    bound = np.float32(1.0 / math.sqrt(shape[1]))
    values = (unit * np.float32(2.0) - np.float32(1.0)) * bound
    return torch.from_numpy(values.reshape(shape).copy())


def lora_layers(model: GPT) -> list[tuple[str, nn.Linear]]:
    """The (module name, layer) pairs LoRA adapts, in canonical order."""
    targets = tuple(f".{t}" for t in LORA_TARGETS)
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.startswith("blocks.") and name.endswith(targets)
    ]


def attach_lora(model: GPT, rank: int, alpha: float, *, seed: int) -> None:
    """Add adapters (A from ``seed``, B = 0) to every LoRA target; no-op where present."""
    for name, layer in lora_layers(model):
        if isinstance(layer, LoRALinear):
            if (layer.rank, layer.alpha) != (rank, alpha):
                raise ConfigError(
                    f"{name} already has a rank-{layer.rank} adapter (alpha {layer.alpha:g})"
                )
            continue
        adapted = LoRALinear(layer, rank, alpha)
        with torch.no_grad():
            adapted.lora_A.copy_(adapter_init(seed, name, (rank, layer.in_features)))
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, adapted)


def adapter_settings(model: GPT) -> tuple[int, float] | None:
    """(rank, alpha) of the model's adapters, or None if it has none."""
    for _, layer in lora_layers(model):
        if isinstance(layer, LoRALinear):
            return layer.rank, layer.alpha
    return None


def trainable_names(model: GPT, spec: TrainableSpec) -> list[str]:
    """Names of the parameters ``spec`` trains, in canonical order."""
    names = [name for name, _ in model.named_parameters()]
    if spec.kind == "full":
        return names
    if spec.kind == "lora":
        return [n for n in names if n.endswith((".lora_A", ".lora_B"))]
    depth = model.config.depth
    if spec.value > depth:
        raise ConfigError(f"last:{spec.value} asks for more blocks than the model's {depth}")
    prefixes = tuple(f"blocks.{i}." for i in range(depth - spec.value, depth))
    return [n for n in names if n.startswith((*prefixes, "ln_f.", "head."))]


def prepare_trainable(
    model: GPT, spec: TrainableSpec, *, seed: int
) -> list[tuple[str, nn.Parameter]]:
    """Set up ``model`` to train what ``spec`` says and freeze the rest.

    Adds LoRA adapters when asked (their ``A`` from ``seed``; existing adapters, e.g. loaded
    from a checkpoint, are kept). Returns the trainable (name, parameter) pairs in canonical
    order; they are the model's live parameters.
    """
    if spec.kind == "lora":
        attach_lora(model, spec.value, spec.lora_alpha, seed=seed)
    chosen = set(trainable_names(model, spec))
    named = []
    for name, param in model.named_parameters():
        param.requires_grad_(name in chosen)
        if name in chosen:
            named.append((name, param))
    return named
