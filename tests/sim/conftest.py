"""Simulator tests run torch on one thread: on a shared 2-core machine, two OpenMP threads per
test process contend with every other process and run many times slower. Results do not depend
on it (the apply rule is thread-count independent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
