"""Checkpoints: exact round trips identified by hash; modified files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from protocol.errors import ConfigError
from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, state_hash
from training.model import GPT, GPTConfig
from training.trainable import TrainableSpec, prepare_trainable

CONFIG = GPTConfig(vocab_size=16, context=16, width=32, depth=2, heads=4)


def test_round_trip_is_hash_equal(tmp_path: Path) -> None:
    model = GPT(CONFIG, seed=4)
    path = tmp_path / "ckpt" / "base.safetensors"
    digest = save_checkpoint(path, model, CONFIG, {"task": "synthetic", "step": 12})
    assert len(digest) == 32 and digest == state_hash(model)
    loaded, meta = load_checkpoint(path)
    assert state_hash(loaded) == digest
    assert loaded.config == CONFIG
    assert meta["task"] == "synthetic" and meta["step"] == 12
    assert meta["model_hash"] == digest.hex()
    x = torch.randint(16, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))


def test_hash_sees_every_parameter() -> None:
    model = GPT(CONFIG)
    digest = state_hash(model)
    with torch.no_grad():
        model.ln_f.bias[3] += 1e-7
    assert state_hash(model) != digest


def test_lora_model_round_trips_with_its_adapters(tmp_path: Path) -> None:
    model = GPT(CONFIG)
    named = dict(prepare_trainable(model, TrainableSpec.parse("lora:2:4"), seed=9))
    with torch.no_grad():
        named["blocks.1.attn.proj.lora_B"].normal_(generator=torch.Generator().manual_seed(1))
    extra = {"trainable": "lora:2:4"}
    digest = save_checkpoint(tmp_path / "lora.safetensors", model, CONFIG, extra)
    loaded, meta = load_checkpoint(tmp_path / "lora.safetensors")
    assert state_hash(loaded) == digest
    assert meta["adapters"] == {"rank": 2, "alpha": 4.0}
    again = prepare_trainable(loaded, TrainableSpec.parse("lora:2:4"), seed=0)
    assert torch.equal(dict(again)["blocks.1.attn.proj.lora_B"], named["blocks.1.attn.proj.lora_B"])
    with pytest.raises(ConfigError, match="rank-2"):
        prepare_trainable(loaded, TrainableSpec.parse("lora:3"), seed=0)


def test_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "base.safetensors"
    save_checkpoint(path, GPT(CONFIG), CONFIG)
    raw = bytearray(path.read_bytes())
    header_len = int.from_bytes(raw[:8], "little")
    position = 8 + header_len + 1001  # inside the tensor data
    raw[position] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="differs from the recorded"):
        load_checkpoint(path)


def test_foreign_and_broken_files_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a seedswarm checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_config_must_match_the_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="differs"):
        save_checkpoint(tmp_path / "x.safetensors", GPT(CONFIG), GPTConfig())
