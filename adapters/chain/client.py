"""ChainClient: one account's view of a deployed seedswarm network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from adapters.chain.artifacts import load_artifact
from adapters.chain.deploy import deploy_suite
from adapters.chain.deployment import Deployment
from adapters.chain.incentives_contract import IncentivesClient
from adapters.chain.journal import SubmissionJournal
from adapters.chain.registry_contract import RegistryClient
from adapters.chain.sender import SenderConfig, TransactionSender
from adapters.chain.submitter import WeightSubmitter
from protocol.domain_types import EvmAddress, Wei
from protocol.settlement.params import EconomicParams, NetworkParams


@dataclass(frozen=True)
class ChainClient:
    """The typed clients of one account on one deployment.

    `weights` is present when a journal path was given: validators submit through it so that
    each epoch's weights go on-chain exactly once.
    """

    w3: Web3
    deployment: Deployment
    sender: TransactionSender
    registry: RegistryClient
    incentives: IncentivesClient
    token: Contract
    weights: WeightSubmitter | None

    @property
    def address(self) -> EvmAddress:
        """The account's address."""
        return self.sender.address

    @classmethod
    def connect(
        cls,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount,
        *,
        journal_path: Path | None = None,
        config: SenderConfig | None = None,
    ) -> ChainClient:
        """Binds `account` to an existing deployment."""
        sender = TransactionSender(w3, account, config)
        incentives = IncentivesClient(w3, deployment.incentives, sender)
        token = w3.eth.contract(
            address=to_checksum_address(deployment.token),
            abi=list(load_artifact("SeedswarmToken").abi),
        )
        submitter = None
        if journal_path is not None:
            scope = f"{deployment.chain_id}:{deployment.incentives}:{sender.address}".lower()
            submitter = WeightSubmitter(incentives, sender, SubmissionJournal(journal_path, scope))
        return cls(
            w3=w3,
            deployment=deployment,
            sender=sender,
            registry=RegistryClient(w3, deployment.registry, sender),
            incentives=incentives,
            token=token,
            weights=submitter,
        )

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        account: LocalAccount,
        network: NetworkParams,
        economics: EconomicParams,
        *,
        journal_path: Path | None = None,
    ) -> ChainClient:
        """Deploys a fresh suite from `account` and connects to it."""
        deployment = deploy_suite(w3, account, network, economics)
        return cls.connect(w3, deployment, account, journal_path=journal_path)

    def token_balance(self, account: EvmAddress | None = None) -> Wei:
        """Reward tokens held by `account` (default: this account)."""
        who = to_checksum_address(account or self.address)
        return Wei(int(self.sender.call_decoded(self.token.functions.balanceOf(who))))

    def eth_balance(self, account: EvmAddress | None = None) -> Wei:
        """Native balance of `account` in wei."""
        who = to_checksum_address(account or self.address)
        return Wei(int(self.w3.eth.get_balance(who)))
