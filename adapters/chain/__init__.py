"""The chain client: typed access to the seedswarm contracts over web3.py.

The embedded default is the in-process EVM (eth-tester + py-evm); any JSON-RPC URL works the
same (anvil for realistic runs). Everything here is imported explicitly by callers that need a
chain. The settlement maths and the contracts' parameter types it speaks in are protocol's
(protocol.settlement); the membership tables are protocol.membership's.
"""

from adapters.chain.backends import EMBEDDED, advance_time, chain_time, connect, funded_account
from adapters.chain.chain_errors import (
    ArtifactError,
    ChainError,
    ChainRevert,
    InvalidWeights,
    JournalConflict,
    TransientRpcError,
)
from adapters.chain.client import ChainClient
from adapters.chain.deploy import deploy_suite
from adapters.chain.deployment import Deployment, TxResult
from adapters.chain.registry_contract import Registration, RegistryClient
from adapters.chain.registry_membership import (
    EpochMembership,
    is_settled,
    read_membership,
    watch_membership,
)

__all__ = [
    "EMBEDDED",
    "ArtifactError",
    "ChainClient",
    "ChainError",
    "ChainRevert",
    "Deployment",
    "EpochMembership",
    "InvalidWeights",
    "JournalConflict",
    "Registration",
    "RegistryClient",
    "TransientRpcError",
    "TxResult",
    "advance_time",
    "chain_time",
    "connect",
    "deploy_suite",
    "funded_account",
    "is_settled",
    "read_membership",
    "watch_membership",
]
