"""Checkpoints: every parameter in a safetensors file, plus JSON metadata and the model hash.

The safetensors header's metadata holds (all strings):

* ``format``: ``seedswarm-checkpoint/1``;
* ``config``: the GPTConfig as JSON;
* ``adapters``: ``{"rank": r, "alpha": a}`` JSON when the model carries LoRA adapters, else
  absent (they are re-attached before loading the weights);
* ``meta``: caller's JSON object (task spec, step, ...);
* ``model_hash`` (hex) and ``hash_scheme``.

Besides the model's parameters a file may carry extra tensors under names starting with
``EXTRA_PREFIX`` (a node's outer momentum buffers); the model ignores them, ``load_extra``
reads them, and the caller checks them (they are outside ``model_hash``).

Loading rebuilds the model, recomputes the hash and refuses a file whose content differs from
its recorded hash: a checkpoint is a consensus object (the swarm's genesis is named by it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protocol.domain_types import ModelHash
from protocol.errors import ConfigError
from protocol.model_hash import model_hash
from training.model import GPT, GPTConfig
from training.trainable import adapter_settings, attach_lora

FORMAT = "seedswarm-checkpoint/1"
HASH_SCHEME = "protocol.model_hash/v1"  # bumped whenever hash_named_tensors changes
EXTRA_PREFIX = "extra:"


class CheckpointError(ConfigError):
    """A checkpoint file is unreadable, malformed, or does not match its recorded hash."""


def hash_named_tensors(named: Sequence[tuple[str, torch.Tensor]]) -> ModelHash:
    """32-byte hash of ``named`` in the given order (the one place checkpoints choose it)."""
    return model_hash(named)


def state_hash(model: torch.nn.Module) -> ModelHash:
    """Hash of every parameter of ``model``, sorted by name: a checkpoint's identity."""
    return hash_named_tensors(sorted(model.named_parameters(), key=lambda item: item[0]))


def save_checkpoint(
    path: str | Path,
    model: GPT,
    config: GPTConfig,
    meta: Mapping[str, Any] | None = None,
    extra: Mapping[str, torch.Tensor] | None = None,
) -> ModelHash:
    """Write ``model`` (and the ``extra`` tensors) to ``path`` (parents created); returns the
    model's hash."""
    if config != model.config:
        raise ConfigError("save_checkpoint: config differs from the model's own")
    digest = state_hash(model)
    header = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "meta": json.dumps(dict(meta or {}), sort_keys=True),
        "model_hash": digest.hex(),
        "hash_scheme": HASH_SCHEME,
    }
    adapters = adapter_settings(model)
    if adapters is not None:
        header["adapters"] = json.dumps({"rank": adapters[0], "alpha": adapters[1]})
    tensors = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters()}
    for name, tensor in (extra or {}).items():
        tensors[EXTRA_PREFIX + name] = tensor.detach().cpu().contiguous()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata=header)
    return digest


def read_header(path: str | Path) -> dict[str, str]:
    """The checkpoint's metadata strings, without loading tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if header.get("format") != FORMAT:
        found = header.get("format")
        raise CheckpointError(f"{path}: not a seedswarm checkpoint (format {found!r})")
    return dict(header)


def load_checkpoint(path: str | Path) -> tuple[GPT, dict[str, Any]]:
    """The model stored at ``path`` and its metadata (caller's ``meta`` plus ``model_hash``
    (hex), ``config`` and, for LoRA models, ``adapters``).

    Raises CheckpointError when the file is malformed or its tensors do not hash to the
    recorded ``model_hash``.
    """
    header = read_header(path)
    try:
        config = GPTConfig.from_dict(json.loads(header["config"]))
        meta = json.loads(header.get("meta", "{}"))
        recorded = bytes.fromhex(header["model_hash"])
        adapters = json.loads(header["adapters"]) if "adapters" in header else None
        tensors = {k: v for k, v in load_file(str(path)).items()
                   if not k.startswith(EXTRA_PREFIX)}
    except (KeyError, ValueError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint ({exc})") from exc
    model = GPT(config)
    if adapters is not None:
        attach_lora(model, int(adapters["rank"]), float(adapters["alpha"]), seed=0)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: tensors do not fit the recorded config ({exc})") from exc
    _check_hash(path, header, recorded, state_hash(model))
    meta.update(model_hash=recorded.hex(), config=config.to_dict())
    if adapters is not None:
        meta["adapters"] = adapters
    return model, meta


def load_extra(path: str | Path) -> dict[str, torch.Tensor]:
    """The extra tensors stored beside the model at ``path``, by their names."""
    read_header(path)
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint ({exc})") from exc
    return {k.removeprefix(EXTRA_PREFIX): v for k, v in tensors.items()
            if k.startswith(EXTRA_PREFIX)}


def _check_hash(
    path: str | Path, header: Mapping[str, str], recorded: bytes, actual: ModelHash
) -> None:
    if actual == recorded:
        return
    scheme = header.get("hash_scheme")
    if scheme != HASH_SCHEME:
        raise CheckpointError(
            f"{path}: hashed with {scheme!r} but this build hashes with {HASH_SCHEME!r}; "
            "re-save the checkpoint with this build"
        )
    raise CheckpointError(
        f"{path}: content hash {actual.hex()[:16]}… differs from the recorded "
        f"{recorded.hex()[:16]}…; the file is corrupt or was modified"
    )
