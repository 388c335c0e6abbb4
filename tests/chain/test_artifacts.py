"""The committed artifacts are exactly what the pinned compiler makes of the current sources."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from adapters.chain.artifacts import CONTRACT_NAMES, artifact_text, load_artifact, load_manifest
from tests.chain.conftest import CONTRACTS, ensure_node_modules

ARTIFACTS = Path(__file__).resolve().parents[2] / "adapters" / "chain" / "artifacts"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_manifest_hashes_match_sources_and_artifacts() -> None:
    manifest = load_manifest()
    sources = {f"src/{p.name}": _sha256(p.read_text()) for p in (CONTRACTS / "src").glob("*.sol")}
    assert manifest["sources"] == sources, "contracts changed: run `npm run build` in contracts/"
    for name in CONTRACT_NAMES:
        assert manifest["artifacts"][name] == _sha256(artifact_text(f"{name}.json"))
        assert len(bytes.fromhex(load_artifact(name).bytecode[2:])) > 1_000


def test_compiler_is_the_pinned_one() -> None:
    pinned = (CONTRACTS / "package.json").read_text()
    assert '"solc": "0.8.37"' in pinned
    assert load_manifest()["compiler"].startswith("solc-js 0.8.37+")


@pytest.mark.chain
def test_recompiling_reproduces_committed_artifacts(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required to rebuild the contracts"
    ensure_node_modules()
    subprocess.run(
        [node, str(CONTRACTS / "build.mjs"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in ARTIFACTS.glob("*.json"))
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (ARTIFACTS / name).read_bytes(), (
            f"{name} is stale: run `npm run build` in contracts/"
        )
