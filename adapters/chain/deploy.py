"""Deploys and wires the contract suite: token, registry, incentives."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from adapters.chain.artifacts import load_artifact
from adapters.chain.chain_errors import ChainError
from adapters.chain.deployment import Deployment
from adapters.chain.sender import TransactionSender
from protocol.domain_types import EvmAddress
from protocol.settlement.params import EconomicParams, NetworkParams


def _deploy(w3: Web3, sender: TransactionSender, name: str, *args: object) -> EvmAddress:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    constructor = factory.constructor(*args)
    receipt = sender.wait(sender.submit(constructor))
    address = receipt["contractAddress"]
    if receipt["status"] != 1 or address is None:
        raise ChainError(f"deploying {name} failed")
    return EvmAddress(str(address))


def _bound(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=list(load_artifact(name).abi))


def deploy_suite(
    w3: Web3,
    deployer: LocalAccount,
    network: NetworkParams,
    economics: EconomicParams,
) -> Deployment:
    """Deploys the three contracts, binds the token's minter and the registry's performance
    source to the incentives contract (both bindings renounce the deployer's ownership)."""
    sender = TransactionSender(w3, deployer)
    token = _deploy(w3, sender, "SeedswarmToken", deployer.address)
    registry = _deploy(w3, sender, "Registry", network.as_tuple(), deployer.address)
    incentives = _deploy(w3, sender, "Incentives", registry, token, economics.as_tuple())
    sender.send(_bound(w3, "SeedswarmToken", token).functions.bindMinter(incentives))
    sender.send(_bound(w3, "Registry", registry).functions.bindIncentives(incentives))
    return Deployment(int(w3.eth.chain_id), token, registry, incentives)
