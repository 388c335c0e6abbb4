"""The chain client: typed access to the seedswarm contracts over web3.py.

The embedded default is the in-process EVM (eth-tester + py-evm); any JSON-RPC URL works the
same (anvil for realistic runs). Everything here is imported explicitly by callers that need a
chain; nothing in `protocol` imports this package implicitly.
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
    Membership,
    MembershipSchedule,
    is_settled,
    read_membership,
    watch_membership,
)
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
