"""The synthetic task: deterministic, small-vocabulary, permutation-walk sequences."""

from __future__ import annotations

import torch

from training.tasks import make_task
from training.tasks.synthetic import NOISE, SYNTHETIC_VOCAB, SyntheticTask, seeded_permutation


def test_batches_are_deterministic_and_shaped() -> None:
    task = make_task("synthetic", context=24, seed=3)
    batch = task.train_batch([5, 0, 5])
    assert batch.inputs.shape == batch.targets.shape == (3, 24)
    assert batch.inputs.dtype == torch.int64
    assert int(batch.inputs.max()) < SYNTHETIC_VOCAB == task.vocab_size
    assert torch.equal(batch.inputs[0], batch.inputs[2])
    same_seed = SyntheticTask(context=24, seed=3).train_batch([5]).inputs[0]
    other_seed = SyntheticTask(context=24, seed=4).train_batch([5]).inputs[0]
    assert torch.equal(same_seed, batch.inputs[0])
    assert not torch.equal(other_seed, batch.inputs[0])
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])


def test_sequences_follow_the_permutation_up_to_noise() -> None:
    task = SyntheticTask(context=64, seed=0)
    perm = torch.tensor(seeded_permutation(0, SYNTHETIC_VOCAB))
    batch = task.train_batch(list(range(200)))
    follows = (perm[batch.inputs] == batch.targets).float().mean().item()
    # A noisy step lands on the permutation's next token by chance 1/16 of the time.
    expected = (1 - NOISE) + NOISE / SYNTHETIC_VOCAB
    assert abs(follows - expected) < 0.02


def test_validation_is_fixed_and_distinct_from_training() -> None:
    task = SyntheticTask(context=16)
    val = task.validation_batch()
    assert torch.equal(val.inputs, SyntheticTask(context=16).validation_batch().inputs)
    assert not torch.equal(val.inputs[:4], task.train_batch([0, 1, 2, 3]).inputs)
    assert task.fingerprint() == SyntheticTask(context=16).fingerprint()
    assert task.fingerprint() != SyntheticTask(context=16, seed=1).fingerprint()
