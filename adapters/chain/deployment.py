"""Where a network's contracts live, and what a mined transaction returned."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from adapters.chain.chain_errors import ChainError
from protocol.domain_types import EvmAddress


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    gas_used: int
    block_number: int


@dataclass(frozen=True)
class Deployment:
    """Where a network's contracts live."""

    chain_id: int
    token: EvmAddress
    registry: EvmAddress
    incentives: EvmAddress

    def to_json(self) -> str:
        """Stable JSON text, for network files."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parses what `to_json` wrote."""
        try:
            raw = json.loads(text)
            return cls(int(raw["chain_id"]), raw["token"], raw["registry"], raw["incentives"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ChainError(f"invalid deployment record: {exc}") from exc

    def save(self, path: Path) -> None:
        """Writes the record to `path`."""
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Reads a record written by `save`."""
        return cls.from_json(path.read_text(encoding="utf-8"))
