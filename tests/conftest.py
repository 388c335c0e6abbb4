"""Shared test configuration."""

from __future__ import annotations

import pytest
from hypothesis import settings

# No property test may depend on the machine's speed: a busy CI machine once failed a consensus
# test on hypothesis's default 200 ms deadline. Tests that pass their own settings inherit this.
settings.register_profile("seedswarm", deadline=None)
settings.load_profile("seedswarm")


def pytest_configure(config: pytest.Config) -> None:
    # The test models are tiny: one torch thread is several times faster than two on a
    # 2-core machine (thread hand-off dominates). Tests about thread counts set their own.
    import torch

    torch.set_num_threads(1)
