"""Chain fixtures: every behavioural suite runs against the in-process EVM and against anvil."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from adapters.chain.backends import connect
from adapters.chain.chain_errors import ChainError
from adapters.chain.devnode import AnvilNode, find_anvil

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
BACKENDS = ("embedded", "anvil")


def ensure_node_modules() -> None:
    """Runs `npm ci` in contracts/ when its node_modules is missing (a clean CI checkout)."""
    if (CONTRACTS / "node_modules" / "solc").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required for the chain tests (contracts/ build and anvil)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CONTRACTS, check=True)


@pytest.fixture(scope="session")
def anvil_binary() -> Path:
    """The anvil binary, installed from the pinned npm package if needed."""
    try:
        return find_anvil()
    except ChainError:
        ensure_node_modules()
        return find_anvil()


@pytest.fixture(scope="module", params=BACKENDS)
def w3(request: pytest.FixtureRequest) -> Iterator[Web3]:
    """A fresh chain per test module (eth-tester slows down as its chain grows)."""
    if request.param == "embedded":
        yield connect()
        return
    binary = request.getfixturevalue("anvil_binary")
    with AnvilNode(binary) as node:
        yield connect(node.url)
