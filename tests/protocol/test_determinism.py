"""Bit-identical directions and applies across processes, thread counts and (golden) machines."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from protocol.apply import apply_updates_
from protocol.gaussian import canonical_gaussian, tensor_le_bytes
from protocol.layout import ParamLayout
from protocol.model_hash import model_hash
from protocol.perturb import DirectionKind, DirectionSpec, Update, direction

REPO_ROOT = Path(__file__).resolve().parents[2]

# Sizes above torch's parallel grain (32768) and with odd tails, so that vectorized, scalar and
# multi-threaded code paths all run.
LAYOUT = ParamLayout(
    names=("emb", "bias", "conv", "proj"),
    shapes=((256, 200), (100_003,), (5, 7, 3), (33, 17)),
)
SPECS = {
    "gaussian": DirectionSpec(DirectionKind.GAUSSIAN),
    "rademacher": DirectionSpec(DirectionKind.RADEMACHER),
    "lowrank1": DirectionSpec(DirectionKind.LOWRANK, rank=1),
    "lowrank4": DirectionSpec(DirectionKind.LOWRANK, rank=4),
}

# Frozen on the reference machine; any machine or torch version that differs must fail here.
GOLDEN = {
    "dir/gaussian": "d429fad7c9bfa51e7c04f235b5b8ef1f248700eb747c0fc0b3b47eae1d053463",
    "dir/rademacher": "117a9bec9d77829a59a993b8176b9c95ca229f948ba41e9476e0138d0d852553",
    "dir/lowrank1": "2147520ff74c6941ecb93996775008b8f4b168db34d24430a921b08ef8f5fdd5",
    "dir/lowrank4": "af1be56e72c14dca321f5b091dd9da38d67d9d284868d978d06bda45a5890244",
    "apply/gaussian": "5be038985a28031851fe6205978df4d94ac13e9efd5032adab01b798566af5e2",
    "apply/rademacher": "3613f6ae66c83cbf86e45f9b3cbbf85314cb610fa4db9f8ec8c49e0c44c6771f",
    "apply/lowrank1": "50af2c3f068448820cf3f13da0cd6ba50757e93f0939ba35064dbca07d6a504b",
    "apply/lowrank4": "11b23dc800b58e5f92eae268d52390585bb621f7438e676d0d58c3134de320f6",
}


def _initial_params() -> list[torch.Tensor]:
    return [
        canonical_gaussian(10_000 + t, LAYOUT.tensor_numel(t)).view(shape).mul(0.02)
        for t, shape in enumerate(LAYOUT.shapes)
    ]


def _updates() -> list[Update]:
    coeffs = [((-1) ** k) * 1e-3 * (1 + k / 7) for k in range(24)]
    blocks = [None, 0, 1, None, 3, None]
    return [
        Update(seed=(2**63 - 1) - 977 * k, coeff=c, block=blocks[k % len(blocks)])
        for k, c in enumerate(coeffs)
    ]


def fingerprint() -> dict[str, str]:
    """SHA-256 of directions and of a model after a sequence of updates, for every kind."""
    out = {}
    for name, spec in SPECS.items():
        h = hashlib.sha256()
        for seed in (0, 123_456_789, 2**63 - 1):
            for z in direction(seed, LAYOUT, spec):
                h.update(tensor_le_bytes(z))
        out[f"dir/{name}"] = h.hexdigest()
        params = _initial_params()
        apply_updates_(params, LAYOUT, _updates(), spec)
        out[f"apply/{name}"] = model_hash(list(zip(LAYOUT.names, params, strict=True))).hex()
    return out


def _fingerprint_in_subprocess(threads: int) -> dict[str, str]:
    code = (
        f"import json, torch; torch.set_num_threads({threads}); "
        "from tests.protocol.test_determinism import fingerprint; "
        "print(json.dumps(fingerprint()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    parsed: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def test_fingerprint_matches_golden() -> None:
    assert fingerprint() == GOLDEN


def test_thread_count_does_not_change_anything() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fingerprint()
        torch.set_num_threads(2)
        two = fingerprint()
    finally:
        torch.set_num_threads(before)
    assert one == two


def test_a_fresh_single_thread_process_agrees_with_this_one() -> None:
    assert _fingerprint_in_subprocess(1) == fingerprint()


@pytest.mark.slow
def test_fresh_processes_agree_whatever_their_thread_count() -> None:
    assert _fingerprint_in_subprocess(2) == _fingerprint_in_subprocess(1) == fingerprint()
