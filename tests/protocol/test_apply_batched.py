"""The batched dense apply is the term-by-term rule, bit for bit: against a slow reference,
against the hash the term-by-term implementation recorded, across batch and block sizes,
thread counts and processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import protocol.apply as apply_mod
from protocol.apply import apply_updates_
from protocol.layout import ParamLayout
from protocol.model_hash import model_hash
from protocol.perturb import DirectionKind, DirectionSpec, Update, tensor_direction

REPO_ROOT = Path(__file__).resolve().parents[2]

# Narrow LoRA-like tensors that share the round's terms, a matrix wider than one accumulator
# column block (16,384), a tensor with block-only terms, an empty one, and three dtypes.
LAYOUT = ParamLayout(
    names=("a0", "b0", "wide", "bias", "empty", "a1", "half", "dbl"),
    shapes=((4, 96), (96, 4), (130, 131), (9,), (0, 3), (4, 96), (5, 7), (3, 11)),
)
DTYPES = (
    torch.float32, torch.float32, torch.float32, torch.float32, torch.float32, torch.float32,
    torch.bfloat16, torch.float64,
)
SPECS = {
    "gaussian": DirectionSpec(DirectionKind.GAUSSIAN),
    "rademacher": DirectionSpec(DirectionKind.RADEMACHER),
    "lowrank2": DirectionSpec(DirectionKind.LOWRANK, rank=2),
}
# Recorded with the term-by-term implementation (main at cf63405, before batching): the
# batched apply must reproduce it exactly.
GOLDEN = {
    "gaussian": "b05f9c88800e0cf2cd6d9b6aa4738f2a1988db4fe9854031df98ddf8f716aaad",
    "rademacher": "34409f79f30508b5e869f5af6de5f6d08e36f2d4dd306c20738c109496384e07",
    "lowrank2": "2f5154650adc624c965cc561cbe237881121df03f9a7f0319a411b13058a62d4",
}


def initial_params() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return [
        (torch.randn(shape, generator=g) * 0.05).to(dtype)
        for shape, dtype in zip(LAYOUT.shapes, DTYPES, strict=True)
    ]


def round_updates(count: int = 300) -> list[Update]:
    """Mostly whole-vector terms, some on tensor 3 or 5 only; seeds across the u64 range;
    coefficients of both signs over six orders of magnitude, one zero, one negative zero."""
    blocks: list[int | None] = [None, None, None, 3, None, 5, None]
    out = []
    for k in range(count):
        coeff = (-1.0) ** k * 10.0 ** (-(k % 7)) * (1.0 + k / 97.0)
        if k == 11:
            coeff = 0.0
        if k == 12:
            coeff = -0.0
        seed = (0x9E3779B97F4A7C15 * (k + 3)) % 2**64
        out.append(Update(seed=seed, coeff=coeff, block=blocks[k % len(blocks)]))
    return out


def fingerprint() -> dict[str, str]:
    out = {}
    for name, spec in SPECS.items():
        params = initial_params()
        apply_updates_(params, LAYOUT, round_updates(), spec)
        out[name] = model_hash(list(zip(LAYOUT.names, params, strict=True))).hex()
    return out


def reference_apply(params: list[torch.Tensor], updates: list[Update],
                    spec: DirectionSpec) -> None:
    """The dense rule as written: term by term, tensor by tensor, ``tmp = z * c`` then
    ``p += tmp`` with z and c rounded to the tensor's dtype (dense tensors only)."""
    for u in updates:
        for t in range(len(LAYOUT)) if u.block is None else [u.block]:
            p = params[t]
            z = tensor_direction(u.seed, t, LAYOUT.shapes[t], spec).to(p.dtype)
            c = torch.tensor(u.coeff, dtype=torch.float64).to(p.dtype)
            p += z * c


@pytest.mark.parametrize("name", ["gaussian", "rademacher"])
def test_batched_dense_apply_equals_the_term_by_term_reference(name: str) -> None:
    spec = SPECS[name]
    updates = round_updates(120)
    fast, slow = initial_params(), initial_params()
    apply_updates_(fast, LAYOUT, updates, spec)
    reference_apply(slow, updates, spec)
    for t, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a.dtype == b.dtype
        assert torch.equal(a.view(-1).view(torch.uint8) if a.numel() else a,
                           b.view(-1).view(torch.uint8) if b.numel() else b), LAYOUT.names[t]


def test_the_recorded_term_by_term_hashes_are_reproduced() -> None:
    assert fingerprint() == GOLDEN


@pytest.mark.parametrize(("floats_per_batch", "column_block"),
                         [(1, 64), (64, 128), (1000, 64), (1 << 16, 1 << 20)])
def test_batch_and_block_sizes_change_no_bit(monkeypatch: pytest.MonkeyPatch,
                                             floats_per_batch: int, column_block: int) -> None:
    monkeypatch.setattr(apply_mod, "_FLOATS_PER_BATCH", floats_per_batch)
    monkeypatch.setattr(apply_mod, "_COLUMN_BLOCK", column_block)
    assert fingerprint() == GOLDEN


def test_splitting_a_round_into_consecutive_applies_changes_nothing() -> None:
    # the dense rule is sequential: applying the first and then the last terms is the same
    updates = round_updates(90)
    spec = SPECS["gaussian"]
    whole, split = initial_params(), initial_params()
    apply_updates_(whole, LAYOUT, updates, spec)
    apply_updates_(split, LAYOUT, updates[:37], spec)
    apply_updates_(split, LAYOUT, updates[37:], spec)
    assert all(torch.equal(a, b) for a, b in zip(whole, split, strict=True))


def _fingerprints_in_subprocess(thread_counts: list[int]) -> list[dict[str, str]]:
    """A fresh process starts with the first thread count, then switches to the others."""
    code = (
        "import json, torch; "
        f"counts = {thread_counts!r}; torch.set_num_threads(counts[0]); "
        "from tests.protocol.test_apply_batched import fingerprint; out = []\n"
        "for n in counts:\n"
        "    torch.set_num_threads(n); out.append(fingerprint())\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
        check=True, timeout=300,
    )
    parsed: list[dict[str, str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_thread_counts_in_a_fresh_process_change_no_bit() -> None:
    assert _fingerprints_in_subprocess([4, 2, 1]) == [GOLDEN] * 3


@pytest.mark.slow
def test_fresh_processes_of_one_two_and_four_threads_agree() -> None:
    results = [_fingerprints_in_subprocess([n])[0] for n in (1, 2, 4)]
    assert results == [GOLDEN] * 3
