"""The canonical layout of the trainable parameters.

Every node must enumerate the trainable tensors in the same order: the tensor index is part of
the key of every random direction (see ``protocol.perturb``), so a different order is a
different model. The order is the one the caller gives (``prepare_trainable`` fixes it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from protocol.errors import ConfigError


@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of the trainable tensors, in canonical order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.shapes):
            raise ConfigError("ParamLayout: names and shapes differ in length")
        if len(set(self.names)) != len(self.names):
            raise ConfigError("ParamLayout: duplicate tensor names")
        for shape in self.shapes:
            if any(d < 0 for d in shape):
                raise ConfigError(f"ParamLayout: negative dimension in {shape}")

    @classmethod
    def of(cls, named: Sequence[tuple[str, torch.Tensor]]) -> ParamLayout:
        """The layout of ``named`` tensors, keeping the given order."""
        return cls(
            names=tuple(name for name, _ in named),
            shapes=tuple(tuple(int(d) for d in t.shape) for _, t in named),
        )

    @property
    def numel(self) -> int:
        """Total number of trainable scalars (the dimension d of a direction)."""
        return sum(self.tensor_numel(i) for i in range(len(self.shapes)))

    def tensor_numel(self, index: int) -> int:
        """Number of scalars in tensor ``index``."""
        return math.prod(self.shapes[index])

    def __len__(self) -> int:
        return len(self.names)

    def check_params(self, params: Sequence[torch.Tensor]) -> None:
        """Raise ConfigError unless ``params`` match this layout tensor by tensor."""
        if len(params) != len(self.shapes):
            raise ConfigError(f"expected {len(self.shapes)} tensors, got {len(params)}")
        for i, (p, shape) in enumerate(zip(params, self.shapes, strict=True)):
            if tuple(p.shape) != shape:
                raise ConfigError(
                    f"tensor {i} ({self.names[i]}): shape {tuple(p.shape)} != layout {shape}"
                )
