"""``synthetic``: a tiny, fully determined task that a small model learns in a few hundred steps.

Sequences over ``SYNTHETIC_VOCAB`` tokens walk a fixed permutation (derived from the data seed):
each token is ``perm[previous]``, except that with probability ~``NOISE`` it is a uniformly random
token instead. A model starts at ln(16) ≈ 2.77 nats and can get down to the noise floor
(≈ 0.57 nats) by learning the permutation, so tests see a large, real margin.

Every sample is a pure function of (seed, split, index), computed from SHAKE-256, so batches are
identical on every machine without shipping data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from protocol.errors import ConfigError
from training.tasks.task import Batch

SYNTHETIC_VOCAB = 16
SYNTHETIC_TRAIN_SAMPLES = 1 << 16
SYNTHETIC_VALIDATION_SAMPLES = 256
NOISE_THRESHOLD = 26  # a random byte below this replaces the token: 26/256 ≈ 10%
NOISE = NOISE_THRESHOLD / 256


def seeded_permutation(seed: int, size: int) -> list[int]:
    """A permutation of ``range(size)`` fixed by ``seed``."""
    return sorted(
        range(size),
        key=lambda t: hashlib.blake2b(f"perm|{seed}|{t}".encode(), digest_size=8).digest(),
    )


class SyntheticTask:
    """Noisy permutation walks; see the module docstring."""

    vocab_size = SYNTHETIC_VOCAB

    def __init__(self, *, context: int = 64, seed: int = 0) -> None:
        if context < 1:
            raise ConfigError(f"context must be positive, got {context}")
        self.name = "synthetic"
        self.context = context
        self.seed = seed
        self._perm = np.array(seeded_permutation(seed, SYNTHETIC_VOCAB), dtype=np.int64)
        self._validation = self._batch("validation", range(SYNTHETIC_VALIDATION_SAMPLES))

    def sample(self, split: str, index: int) -> np.ndarray:
        """The ``context + 1`` tokens of sample ``index`` of ``split`` ("train"/"validation")."""
        length = self.context + 1
        stream = hashlib.shake_256(f"synthetic|{self.seed}|{split}|{index}".encode())
        raw = np.frombuffer(stream.digest(2 * length), dtype=np.uint8).reshape(2, length)
        noise, random_tokens = raw[0] < NOISE_THRESHOLD, raw[1].astype(np.int64) % self.vocab_size
        tokens = np.empty(length, dtype=np.int64)
        tokens[0] = random_tokens[0]
        for t in range(1, length):
            tokens[t] = random_tokens[t] if noise[t] else self._perm[tokens[t - 1]]
        return tokens

    def _batch(self, split: str, indices: Sequence[int]) -> Batch:
        if len(indices) == 0:
            raise ConfigError("a batch needs at least one sample index")
        rows = [self.sample(split, int(i)) for i in indices]
        windows = torch.from_numpy(np.stack(rows))
        return Batch(inputs=windows[:, :-1].contiguous(), targets=windows[:, 1:].contiguous())

    def num_train_samples(self) -> int:
        return SYNTHETIC_TRAIN_SAMPLES

    def train_batch(self, indices: Sequence[int]) -> Batch:
        for i in indices:
            if not 0 <= int(i) < SYNTHETIC_TRAIN_SAMPLES:
                raise IndexError(f"sample {i} out of range [0, {SYNTHETIC_TRAIN_SAMPLES})")
        return self._batch("train", indices)

    def random_batch(self, indices: Sequence[int]) -> Batch:
        return self.train_batch(indices)

    def validation_batch(self) -> Batch:
        return self._validation

    def fingerprint(self) -> str:
        identity = (
            f"synthetic|v1|seed={self.seed}|context={self.context}|vocab={self.vocab_size}"
            f"|noise={NOISE_THRESHOLD}|train={SYNTHETIC_TRAIN_SAMPLES}"
            f"|val={SYNTHETIC_VALIDATION_SAMPLES}"
        )
        return hashlib.sha256(identity.encode()).hexdigest()
