"""A network's starting point: a base model, what of it trains, and the task.

The genesis model is (base checkpoint, trainable spec). ``base`` is ``scratch`` (a random init
of the recipe's shape), ``auto`` (a small base pretrained once: the checkpoint is cached under
the cache directory by a digest of its recipe, pretraining config and the data's fingerprint,
and verified by its hash when reused, so a second run starts in seconds), or the path of a
checkpoint written by ``seedswarm pretrain``. The simulator's ``SimConfig`` is a recipe, and so
is ``GenesisSpec``, what a local network is started from.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch

from protocol.domain_types import ModelHash
from protocol.errors import ConfigError
from protocol.model_hash import model_hash
from training.checkpoint import load_checkpoint, save_checkpoint
from training.model import GPT, GPTConfig
from training.pretrain import PretrainConfig, pretrain, save_pretrained
from training.tasks import Task, make_task
from training.trainable import TrainableSpec, prepare_trainable

ProgressCallback = Callable[[int, float], None]

DEFAULT_TRAINABLE = "lora:4"
"""What of a base model trains unless a genesis recipe says otherwise: rank-4 LoRA adapters."""


@dataclass(frozen=True)
class ModelShape:
    """The GPT a network starts from when it pretrains its own base (or starts from scratch)."""

    width: int = 64
    depth: int = 2
    heads: int = 4
    context: int = 64


class GenesisRecipe(Protocol):
    """What `build_genesis` needs to know (``SimConfig`` and ``GenesisSpec`` both say it)."""

    @property
    def task(self) -> str: ...
    @property
    def trainable(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def shape(self) -> ModelShape: ...
    @property
    def seed(self) -> int: ...
    @property
    def data_seed(self) -> int: ...
    @property
    def pretrain_task(self) -> str: ...
    @property
    def pretrain_steps(self) -> int: ...
    @property
    def cache_dir(self) -> Path | None: ...


@dataclass(frozen=True)
class GenesisSpec:
    """A genesis recipe on its own (see `GenesisRecipe`)."""

    task: str
    trainable: str = DEFAULT_TRAINABLE
    base: str = "scratch"
    shape: ModelShape = ModelShape()
    seed: int = 0
    data_seed: int = 0
    pretrain_task: str = "pycode:pretrain"
    pretrain_steps: int = 200
    cache_dir: Path | None = None


@dataclass
class Genesis:
    """A live model with its trainable tensors, the fine-tuning task and the base's identity."""

    model: GPT
    named: list[tuple[str, torch.nn.Parameter]]
    task: Task
    base_description: str
    model_hash: ModelHash

    @property
    def trainable_numel(self) -> int:
        return sum(p.numel() for _, p in self.named)


def default_cache_dir() -> Path:
    """``$SEEDSWARM_CACHE`` or ``~/.cache/seedswarm``."""
    env = os.environ.get("SEEDSWARM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "seedswarm"


def pretrain_recipe(config: GenesisRecipe) -> PretrainConfig:
    """The pretraining run behind ``base = "auto"``."""
    shape = config.shape
    return PretrainConfig(
        task=config.pretrain_task,
        steps=config.pretrain_steps,
        batch_size=32,
        lr=3e-3,
        warmup_steps=min(20, max(1, config.pretrain_steps // 10)),
        seed=config.seed,
        data_seed=config.data_seed,
        context=shape.context,
        width=shape.width,
        depth=shape.depth,
        heads=shape.heads,
    )


def cached_base(
    recipe: PretrainConfig, cache_dir: Path, progress: ProgressCallback | None = None
) -> tuple[GPT, str]:
    """The pretrained base of ``recipe``, from the cache or trained now (then cached)."""
    task = make_task(recipe.task, context=recipe.context, seed=recipe.data_seed)
    key_text = json.dumps({"recipe": asdict(recipe), "data": task.fingerprint()}, sort_keys=True)
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    path = cache_dir / "base" / f"{key}.safetensors"
    if path.exists():
        model, meta = load_checkpoint(path)
        return model, f"cached {path.name} (hash {meta['model_hash'][:12]})"
    model, digest, history = pretrain(recipe, task=task, progress=progress)
    save_pretrained(path, model, recipe, history)
    return model, f"pretrained {recipe.steps} steps, saved {path.name} (hash {digest.hex()[:12]})"


def build_genesis(config: GenesisRecipe, progress: ProgressCallback | None = None) -> Genesis:
    """Task, base model and trainable tensors of a run."""
    if config.base in ("scratch", "auto"):
        task = make_task(config.task, context=config.shape.context, seed=config.data_seed)
        if config.base == "scratch":
            model, description = scratch_model(config, task.vocab_size), "random init"
        else:
            cache = config.cache_dir or default_cache_dir()
            model, description = cached_base(pretrain_recipe(config), cache, progress)
    else:
        model, meta = load_checkpoint(config.base)
        description = f"{config.base} (hash {meta['model_hash'][:12]})"
        task = make_task(config.task, context=model.config.context, seed=config.data_seed)
    if task.vocab_size != model.config.vocab_size:
        raise ConfigError(
            f"task {config.task} has {task.vocab_size} tokens, the base model "
            f"{model.config.vocab_size}"
        )
    named = prepare_trainable(model, TrainableSpec.parse(config.trainable), seed=config.seed)
    model.eval()
    return Genesis(model, named, task, description, model_hash(named))


def scratch_model(config: GenesisRecipe, vocab_size: int) -> GPT:
    """A randomly initialised GPT of the run's shape."""
    shape = config.shape
    gpt = GPTConfig(
        vocab_size=vocab_size, context=shape.context, width=shape.width,
        depth=shape.depth, heads=shape.heads,
    )
    return GPT(gpt, seed=config.seed)


def save_genesis(genesis: Genesis, path: Path, meta: dict[str, object]) -> None:
    """Write the genesis model (adapters included) as a checkpoint; `meta` is stored with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, genesis.model, genesis.model.config, dict(meta))
