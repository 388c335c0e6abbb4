"""The chain client: typed access to the seedswarm contracts over web3.py.

The embedded default is the in-process EVM (eth-tester + py-evm); any JSON-RPC URL works the
same (anvil for realistic runs). Everything here is imported explicitly by callers that need a
chain; nothing in `protocol` imports this package implicitly.

The names that need web3 (the client, backends, deployment, registry readers) load on first
use, so code that only needs the errors, the journal or the settlement port
(`settlement_port.SettlementPort`, implemented by `chain_settlement.ChainSettlement` and, in
process, `memory_settlement.MemorySettlement`) does not pull web3 in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from adapters.chain.chain_errors import (
    ArtifactError,
    ChainError,
    ChainRevert,
    InvalidWeights,
    JournalConflict,
    TransientRpcError,
)
from adapters.chain.deployment import Deployment, TxResult
from protocol.settlement.median import consensus_weight, settle_reference
from protocol.settlement.merkle import RewardTree, build_reward_tree, reward_leaf
from protocol.settlement.params import (
    WEIGHT_SCALE,
    EconomicParams,
    EpochStatus,
    NetworkParams,
    Role,
)
from protocol.settlement.weight_vector import commit_digest, normalize_weights

if TYPE_CHECKING:
    from adapters.chain.backends import (
        EMBEDDED,
        advance_time,
        chain_time,
        connect,
        funded_account,
    )
    from adapters.chain.client import ChainClient
    from adapters.chain.deploy import deploy_suite
    from adapters.chain.registry_contract import Registration, RegistryClient
    from adapters.chain.registry_membership import (
        EpochMembership,
        Membership,
        MembershipSchedule,
        is_settled,
        read_membership,
        watch_membership,
    )

_ON_FIRST_USE = {
    "adapters.chain.backends": (
        "EMBEDDED", "advance_time", "chain_time", "connect", "funded_account"),
    "adapters.chain.client": ("ChainClient",),
    "adapters.chain.deploy": ("deploy_suite",),
    "adapters.chain.registry_contract": ("Registration", "RegistryClient"),
    "adapters.chain.registry_membership": (
        "EpochMembership", "Membership", "MembershipSchedule", "is_settled", "read_membership",
        "watch_membership"),
}
_MODULE_OF = {name: module for module, names in _ON_FIRST_USE.items() for name in names}


if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        """Loads a web3-backed name on first use (PEP 562), then keeps it as a global."""
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


__all__ = [
    "EMBEDDED",
    "WEIGHT_SCALE",
    "ArtifactError",
    "ChainClient",
    "ChainError",
    "ChainRevert",
    "Deployment",
    "EconomicParams",
    "EpochMembership",
    "EpochStatus",
    "InvalidWeights",
    "JournalConflict",
    "Membership",
    "MembershipSchedule",
    "NetworkParams",
    "Registration",
    "RegistryClient",
    "RewardTree",
    "Role",
    "TransientRpcError",
    "TxResult",
    "advance_time",
    "build_reward_tree",
    "chain_time",
    "commit_digest",
    "connect",
    "consensus_weight",
    "deploy_suite",
    "funded_account",
    "is_settled",
    "normalize_weights",
    "read_membership",
    "reward_leaf",
    "settle_reference",
    "watch_membership",
]
