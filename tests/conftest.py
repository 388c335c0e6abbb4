"""Shared test configuration."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The test models are tiny: one torch thread is several times faster than two on a
    # 2-core machine (thread hand-off dominates). Tests about thread counts set their own.
    import torch

    torch.set_num_threads(1)
