"""Trainable specs: full, LoRA adapters that start as a no-op, last:k blocks."""

from __future__ import annotations

import pytest
import torch

from protocol.errors import ConfigError
from training.checkpoint import hash_named_tensors, state_hash
from training.model import GPT, GPTConfig
from training.trainable import TrainableSpec, adapter_init, prepare_trainable

PINNED_A = [-0.13720284402370453, 0.06587333232164383]
CONFIG = GPTConfig(vocab_size=16, context=16, width=32, depth=3, heads=4)


def inputs() -> torch.Tensor:
    return torch.randint(16, (3, 16), generator=torch.Generator().manual_seed(0))


def test_parse_and_print() -> None:
    assert TrainableSpec.parse("full") == TrainableSpec("full")
    assert TrainableSpec.parse("lora:4") == TrainableSpec("lora", 4)
    assert TrainableSpec.parse("lora:4:8").lora_alpha == 8.0
    assert TrainableSpec.parse("lora:4").lora_alpha == 4.0
    assert TrainableSpec.parse("last:2") == TrainableSpec("last", 2)
    for text in ("full", "lora:4", "lora:4:8", "last:2"):
        assert str(TrainableSpec.parse(text)) == text
    for bad in ("lora", "lora:0", "lora:x", "last:-1", "half", "full:1", "last:1:2"):
        with pytest.raises(ConfigError):
            TrainableSpec.parse(bad)


def test_full_trains_everything_in_definition_order() -> None:
    model = GPT(CONFIG)
    named = prepare_trainable(model, TrainableSpec("full"), seed=0)
    assert [n for n, _ in named] == [n for n, _ in model.named_parameters()]
    assert named[0][0] == "tok_emb.weight" and named[-1][0] == "head.weight"
    assert all(p.requires_grad for _, p in named)


def test_lora_starts_as_the_base_model() -> None:
    model = GPT(CONFIG, seed=3).eval()
    base_hash = state_hash(model)
    with torch.no_grad():
        before = model(inputs())
    named = prepare_trainable(model, TrainableSpec("lora", 2), seed=11)
    with torch.no_grad():
        after = model(inputs())
    assert torch.equal(before, after)
    names = [n for n, _ in named]
    assert len(names) == 2 * 4 * CONFIG.depth
    assert names[:4] == [
        "blocks.0.attn.qkv.lora_A", "blocks.0.attn.qkv.lora_B",
        "blocks.0.attn.proj.lora_A", "blocks.0.attn.proj.lora_B",
    ]
    assert names[-1] == "blocks.2.mlp.out.lora_B"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(names)
    # The base weights keep their names and values.
    base = [(n, p) for n, p in model.named_parameters() if ".lora_" not in n]
    assert state_hash_of(base) == base_hash
    qkv_a = dict(named)["blocks.0.attn.qkv.lora_A"]
    assert qkv_a.shape == (2, 32) and float(qkv_a.detach().abs().max()) <= 32**-0.5
    assert float(dict(named)["blocks.0.attn.qkv.lora_B"].detach().abs().max()) == 0.0


def state_hash_of(named: list[tuple[str, torch.nn.Parameter]]) -> bytes:
    """What ``state_hash`` computes, over a subset of a model's parameters."""
    return hash_named_tensors(sorted(named, key=lambda item: item[0]))


def test_lora_adapters_move_the_output_once_trained() -> None:
    model = GPT(CONFIG).eval()
    named = dict(prepare_trainable(model, TrainableSpec("lora", 2), seed=0))
    with torch.no_grad():
        before = model(inputs())
        named["blocks.1.mlp.fc.lora_B"].fill_(0.5)
        assert not torch.equal(before, model(inputs()))


def test_lora_init_depends_only_on_seed_and_layer() -> None:
    a = adapter_init(5, "blocks.0.attn.qkv", (4, 32))
    assert torch.equal(a, adapter_init(5, "blocks.0.attn.qkv", (4, 32)))
    assert not torch.equal(a, adapter_init(6, "blocks.0.attn.qkv", (4, 32)))
    assert not torch.equal(a, adapter_init(5, "blocks.1.attn.qkv", (4, 32)))
    assert a.dtype == torch.float32
    # Pinned values: the genesis model of a LoRA network depends on these exact numbers.
    assert a.flatten()[:2].tolist() == PINNED_A
    assert float(a.min()) >= -(32**-0.5) and float(a.max()) <= 32**-0.5


def test_last_k_trains_last_blocks_and_head_only() -> None:
    model = GPT(CONFIG)
    names = [n for n, _ in prepare_trainable(model, TrainableSpec("last", 1), seed=0)]
    assert names[0] == "blocks.2.ln1.weight"
    assert names[-3:] == ["ln_f.weight", "ln_f.bias", "head.weight"]
    assert all(n.startswith(("blocks.2.", "ln_f.", "head.")) for n in names)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert "tok_emb.weight" in frozen and "blocks.1.mlp.out.weight" in frozen
    assert frozen | set(names) == {n for n, _ in model.named_parameters()}
    head_only = prepare_trainable(GPT(CONFIG), TrainableSpec("last", 0), seed=0)
    assert [n for n, _ in head_only] == ["ln_f.weight", "ln_f.bias", "head.weight"]
    with pytest.raises(ConfigError, match="more blocks"):
        prepare_trainable(GPT(CONFIG), TrainableSpec("last", 4), seed=0)


def test_frozen_parameters_get_no_gradient() -> None:
    model = GPT(CONFIG)
    prepare_trainable(model, TrainableSpec("last", 1), seed=0)
    x = inputs()
    loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 16), x.reshape(-1))
    torch.autograd.backward(loss)
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["tok_emb.weight"] is None and grads["blocks.0.attn.qkv.weight"] is None
    assert grads["head.weight"] is not None and grads["blocks.2.mlp.fc.weight"] is not None
