"""Joining a network from its network file: the chain side (funds, registration) and the node's
settings, so that `seedswarm join` is one command and re-running it changes nothing.

Registration is idempotent: a key already registered in the role asked for is used as it is;
one registered in another role, or under another node key, is refused with what to do instead.
A newly registered node takes part from the next epoch (membership is the Registry's snapshot
at each epoch's start); until then it follows the network and says what it waits for.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from adapters.chain.backends import connect
from adapters.chain.client import ChainClient
from adapters.chain.standing import Standing, read_standing
from adapters.storage.keystore import KeyBundle
from protocol.domain_types import Wei
from protocol.errors import ConfigError
from protocol.settlement.params import Role
from seedswarm.launch.join_bundle import JoinBundle
from seedswarm.launch.settings import NodeSettings

GAS_RESERVE = Wei(10**17)
"""Coin kept aside for transactions besides the stake (0.1 of the chain's coin)."""
ROLES = {"miner": Role.MINER, "validator": Role.VALIDATOR}


def min_stake(bundle: JoinBundle, role: str) -> Wei:
    chain = bundle.chain
    return Wei(chain.min_miner_stake if role == "miner" else chain.min_validator_stake)


def connect_client(bundle: JoinBundle, keys: KeyBundle, chain_url: str) -> ChainClient:
    """A chain client for `keys`' account; ConfigError naming the URL when the chain is not
    there or is another chain than the network file's."""
    try:
        w3 = connect(chain_url)
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # any transport failure means the same thing to a joiner
        raise ConfigError(f"cannot reach the chain at {chain_url} ({type(exc).__name__}): is "
                          "the network's RPC endpoint up and reachable from here?") from exc
    if chain_id != bundle.chain.chain_id:
        raise ConfigError(f"{chain_url} is chain {chain_id}, the network file says "
                          f"{bundle.chain.chain_id}: wrong RPC URL for this network")
    return ChainClient.connect(w3, bundle.chain.deployment, keys.evm_account)


def ensure_registered(client: ChainClient, bundle: JoinBundle, keys: KeyBundle, role: str,
                      stake: Wei | None) -> tuple[Standing, bool]:
    """Register `keys` in `role` with `stake` (default: the network's minimum) unless it is
    registered already; where it stands afterwards, and whether it registered now."""
    registry = client.registry
    wanted = ROLES[role]
    current = registry.role_of()
    node_key = keys.node_key.public.raw
    newly = False
    if current == Role.NONE:
        amount = stake if stake is not None else min_stake(bundle, role)
        if amount < min_stake(bundle, role):
            raise ConfigError(f"a {role} stakes at least {_coin(min_stake(bundle, role))}, "
                              f"not {_coin(amount)}: raise --stake")
        balance = client.eth_balance()
        if balance < amount + GAS_RESERVE:
            raise ConfigError(
                f"{keys.evm_address} holds {_coin(balance)}, needs {_coin(amount)} to stake "
                "plus gas: fund it (on a devnet: add --faucet)")
        if wanted == Role.MINER:
            registry.register_miner(node_key, amount)
        else:
            registry.register_validator(node_key, amount)
        newly = True
    elif current != wanted:
        raise ConfigError(
            f"{keys.evm_address} is registered as a {current.name.lower()}, not a {role}: join "
            f"with --role {current.name.lower()}, or use other keys for a {role}")
    elif registry.node_key_of() != node_key:
        raise ConfigError(
            f"{keys.evm_address} is registered with another node key: use the keystore it "
            "registered with (one account, one node)")
    return read_standing(registry, keys.evm_address), newly


def active_epoch(standing: Standing, epoch_start: int) -> int:
    """The first epoch whose membership includes this registration (`epoch_start`: when the
    current epoch starts; in the future only before genesis, which counts everyone then)."""
    before_genesis = epoch_start > standing.chain_time
    return standing.epoch if standing.active or before_genesis else standing.epoch + 1


def network_round(bundle: JoinBundle, now: float | None = None) -> int:
    """The round the network's clock is in (−1 before genesis)."""
    elapsed = (time.time() if now is None else now) - bundle.genesis.time
    return math.floor(elapsed / bundle.network.round_length) if elapsed >= 0 else -1


def node_settings(bundle_file: Path, keys_dir: Path, role: str,
                  state_dir: Path) -> NodeSettings:
    """The settings `seedswarm miner|validator --config` runs a joined node with (flags and
    the environment override them: seedswarm.launch.settings)."""
    return NodeSettings(role=role, network=bundle_file.resolve(), keystore=keys_dir.resolve(),
                        state_dir=state_dir.resolve(),
                        status_file=(state_dir / "status.json").resolve(),
                        log_file=(state_dir / "node.log").resolve())


def _coin(amount: int) -> str:
    return f"{amount / 10**18:g}"
