"""Compiled contract artifacts shipped as package data (built by contracts/build.mjs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from adapters.chain.chain_errors import ArtifactError

CONTRACT_NAMES: tuple[str, ...] = ("SeedswarmToken", "Registry", "Incentives")
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    """ABI and creation bytecode of one contract."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str


def artifact_text(file_name: str) -> str:
    """Raw text of one file in the artifacts directory."""
    try:
        return resources.files("adapters.chain").joinpath("artifacts", file_name).read_text("utf-8")
    except FileNotFoundError as exc:
        raise ArtifactError(f"missing contract artifact {file_name}; run `npm run build`") from exc


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract `name` (one of CONTRACT_NAMES)."""
    if name not in CONTRACT_NAMES:
        raise ArtifactError(f"unknown contract {name!r}")
    raw = json.loads(artifact_text(f"{name}.json"))
    return Artifact(name=name, abi=tuple(raw["abi"]), bytecode=str(raw["bytecode"]))


@cache
def load_manifest() -> dict[str, Any]:
    """Compiler version, settings and source hashes the artifacts were built from."""
    manifest: dict[str, Any] = json.loads(artifact_text(MANIFEST_NAME))
    return manifest


def all_abis() -> list[tuple[dict[str, Any], ...]]:
    """ABIs of every contract of the suite (used to decode custom errors)."""
    return [load_artifact(name).abi for name in CONTRACT_NAMES]
