"""The outer step (protocol.outer): Nesterov momentum, bit for bit, and the state hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protocol.errors import ConfigError
from protocol.model_hash import model_hash
from protocol.outer import check_momentum, nesterov_step_, state_hash


def _tensors(seed: int, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for shape in shapes]


SHAPES = [(257, 129), (1000,), (3, 5, 7)]


def test_nesterov_step_is_the_stated_sequence_of_float32_operations() -> None:
    params, buffers, deltas = _tensors(0, SHAPES), _tensors(1, SHAPES), _tensors(2, SHAPES)
    mu = 0.9
    expected = []
    for p, b, d in zip(params, buffers, deltas, strict=True):
        pn, bn, dn = p.numpy().copy(), b.numpy().copy(), d.numpy().copy()
        m = np.float32(mu)
        bn = (bn * m).astype(np.float32) + dn
        step = (bn * m).astype(np.float32) + dn
        expected.append(((pn + step).astype(np.float32), bn.astype(np.float32)))
    nesterov_step_(params, buffers, deltas, mu)
    for (p_ref, b_ref), p, b in zip(expected, params, buffers, strict=True):
        assert p_ref.tobytes() == p.numpy().tobytes()
        assert b_ref.tobytes() == b.numpy().tobytes()


def test_nesterov_step_does_not_depend_on_the_thread_count() -> None:
    shapes = [(1024, 1024), (4097,)]
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            params, buffers, deltas = (_tensors(s, shapes) for s in (3, 4, 5))
            for _ in range(3):
                nesterov_step_(params, buffers, deltas, 0.95)
            results.append(model_hash([(str(i), t) for i, t in enumerate(params + buffers)]))
    finally:
        torch.set_num_threads(threads)
    assert len(set(results)) == 1


def test_plain_sgd_and_momentum_differ_and_momentum_carries_over() -> None:
    params, deltas = _tensors(6, SHAPES), _tensors(7, SHAPES)
    buffers = [torch.zeros_like(p) for p in params]
    start = [p.clone() for p in params]
    nesterov_step_(params, buffers, deltas, 0.5)
    # first step from zero buffers: b = d, p += d + 0.5 d
    for p0, p, d, b in zip(start, params, deltas, buffers, strict=True):
        assert torch.equal(b, d)
        assert torch.allclose(p - p0, 1.5 * d, atol=1e-5)
    # a zero update still moves the model through the buffer
    moved = [p.clone() for p in params]
    nesterov_step_(params, buffers, [torch.zeros_like(d) for d in deltas], 0.5)
    assert all(not torch.equal(a, b) for a, b in zip(moved, params, strict=True))


def test_the_state_hash_covers_the_buffers_once_they_are_not_zero() -> None:
    named = [(f"t{i}", t) for i, t in enumerate(_tensors(8, SHAPES))]
    zeros = [torch.zeros_like(t) for _, t in named]
    # at genesis the state is named by the model hash alone (the network's base hash)
    assert state_hash(named, zeros) == state_hash(named) == model_hash(named)
    moved = [b.clone() for b in zeros]
    moved[1][3] = 1e-30
    assert state_hash(named, moved) != model_hash(named)
    flipped = [b.clone() for b in moved]
    flipped[1].view(torch.int32)[3] ^= 1  # one bit of one buffer
    assert state_hash(named, flipped) != state_hash(named, moved)
    negative_zero = [b.clone() for b in zeros]
    negative_zero[0][0, 0] = -0.0  # not all-zero bytes: hashed, so replicas cannot disagree
    assert state_hash(named, negative_zero) != model_hash(named)
    with pytest.raises(ConfigError, match="one momentum buffer per"):
        state_hash(named, zeros[:1])


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2, float("nan"), "0.9", True])
def test_momentum_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="outer_momentum"):
        check_momentum(bad)  # type: ignore[arg-type]


def test_nesterov_step_refuses_mismatched_shapes() -> None:
    params, buffers = _tensors(9, SHAPES), _tensors(10, SHAPES)
    deltas = _tensors(11, [(1,), (1000,), (3, 5, 7)])
    with pytest.raises(ConfigError, match="does not match"):
        nesterov_step_(params, buffers, deltas, 0.9)
