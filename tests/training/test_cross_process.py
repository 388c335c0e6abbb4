"""What nodes must agree on (task data, fingerprints, LoRA init) is identical in a fresh
process running torch with a different thread count."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import torch

from training.model import GPT, GPTConfig
from training.tasks import make_task
from training.trainable import TrainableSpec, prepare_trainable

ROOT = Path(__file__).resolve().parents[2]


def agreed_digest() -> str:
    """One hash over everything two nodes must compute identically."""
    h = hashlib.sha256()
    for spec in ("pycode", "synthetic"):
        task = make_task(spec, context=32, seed=5, max_bytes=400_000)
        h.update(task.fingerprint().encode())
        h.update(task.train_batch([3, 1, 4, 1, 5]).inputs.numpy().tobytes())
        h.update(task.validation_batch().targets.numpy().tobytes())
    model = GPT(GPTConfig(vocab_size=16, context=16, width=32, depth=2, heads=4))
    for _, p in prepare_trainable(model, TrainableSpec.parse("lora:2"), seed=7):
        h.update(p.detach().numpy().tobytes())
    return h.hexdigest()


def test_agreed_data_is_identical_in_another_process() -> None:
    threads = 1 if torch.get_num_threads() > 1 else 2
    script = (
        f"import torch; torch.set_num_threads({threads}); "
        "from tests.training.test_cross_process import agreed_digest; print(agreed_digest())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == agreed_digest()
