"""The GPT model: seeded init, causal, deterministic loss within a process."""

from __future__ import annotations

import pytest
import torch

from protocol.errors import ConfigError
from training.model import GPT, GPTConfig
from training.tasks import make_task

SMALL = GPTConfig(vocab_size=16, context=16, width=32, depth=2, heads=4)


def test_default_sizes() -> None:
    config = GPTConfig()
    assert (config.vocab_size, config.context, config.width, config.depth) == (256, 64, 128, 4)
    assert 0.5e6 < GPT(config).num_parameters() < 1.5e6


def test_init_is_a_function_of_the_seed() -> None:
    a, b, c = GPT(SMALL, seed=1), GPT(SMALL, seed=1), GPT(SMALL, seed=2)
    for (name, pa), (_, pb), (_, pc) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        if pa.dim() >= 2:
            assert not torch.equal(pa, pc), name


def test_loss_is_deterministic_given_the_seed() -> None:
    task = make_task("synthetic", context=16)
    batch = task.train_batch(list(range(8)))
    with torch.no_grad():
        losses = [float(GPT(SMALL, seed=7).eval().loss(batch)) for _ in range(2)]
    assert losses[0] == losses[1]
    # An untrained model is near-uniform over the vocabulary.
    assert abs(losses[0] - torch.log(torch.tensor(16.0)).item()) < 0.3


def test_attention_is_causal() -> None:
    model = GPT(SMALL).eval()
    x = torch.randint(16, (2, 16), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % 16
    with torch.no_grad():
        assert torch.equal(model(x)[:, :10], model(y)[:, :10])
        assert not torch.equal(model(x)[:, 10:], model(y)[:, 10:])


def test_eval_mode_has_no_dropout() -> None:
    model = GPT(GPTConfig(vocab_size=16, context=16, width=32, depth=1, heads=2, dropout=0.5))
    x = torch.zeros(1, 16, dtype=torch.long)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        torch.manual_seed(0)
        assert not torch.equal(model(x), model(x))


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        GPTConfig(width=30, heads=4)
    with pytest.raises(ConfigError, match="depth"):
        GPTConfig(depth=0)
    with pytest.raises(ConfigError, match="exceeds context"):
        GPT(SMALL)(torch.zeros(1, 17, dtype=torch.long))
    assert GPTConfig.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ConfigError, match="unknown"):
        GPTConfig.from_dict({**SMALL.to_dict(), "bogus": 1})
