"""What the node's chain commands (stake, rewards, status, receipts, doctor) share.

The network file, the key directory or a bare address, a client on the network's chain, amounts
in ETH/SEED, and errors that say in one line what is wrong and what to do about it. Read-only
commands never decrypt the keystore: its address and node key are stored in the clear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from protocol.errors import ConfigError, KeystoreError, SeedswarmError

if TYPE_CHECKING:
    from web3 import Web3

    from adapters.chain.client import ChainClient
    from adapters.storage.keystore import KeyBundle, KeystoreInfo
    from protocol.domain_types import EvmAddress, Wei
    from seedswarm.launch.join_bundle import JoinBundle

NetworkOption = Annotated[
    Path, typer.Option("--network", help="The network file from its operator (network.toml).")
]
KeysOption = Annotated[
    Path | None,
    typer.Option("--keys", help="Key directory holding keystore.json (`seedswarm keys new`)."),
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="Read-only: any account's 0x address.")
]
RpcOption = Annotated[
    str | None,
    typer.Option("--rpc", help="JSON-RPC URL instead of the network file's (same chain)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
DEFAULT_NETWORK = Path("network.toml")

UNIT = 10**18
"""Wei per ETH (stake, gas) and per SEED (rewards): both have 18 decimals."""
GAS_BUDGET = 500_000
"""Gas set aside for one transaction when checking that an account can pay for it."""


class ChainUnreachable(SeedswarmError):
    """The network's chain did not answer."""


class NotReady(SeedswarmError):
    """The account is not in the state an action needs (unregistered, unfunded, unbonding)."""


def load_bundle(path: Path) -> JoinBundle:
    """The network file at `path`; ConfigError naming the fix when there is none."""
    from seedswarm.launch.join_bundle import JoinBundle

    if not path.is_file():
        raise ConfigError(f"no network file at {path}: get network.toml from the network's "
                          "operator and pass --network PATH")
    return JoinBundle.load(path)


def keystore_info(directory: Path) -> KeystoreInfo:
    """The keystore's public half (address, node key): no password needed."""
    from adapters.storage.keystore import read_keystore_info
    from seedswarm.commands.keys import keystore_path

    path = _existing_keystore(directory)
    try:
        return read_keystore_info(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"cannot read {keystore_path(directory)}: {exc}") from None


def load_node_keys(directory: Path) -> KeyBundle:
    """The decrypted keys; one-line KeystoreError with the fix for a wrong password."""
    from seedswarm.commands.keys import PASSWORD_ENV, load_keys

    path = _existing_keystore(directory)
    try:
        return load_keys(directory)
    except KeystoreError as exc:
        if "wrong password" not in str(exc):
            raise
        raise KeystoreError(
            f"cannot decrypt {path}: wrong password (or the file was modified): set "
            f"${PASSWORD_ENV} to the password given to `seedswarm keys new`, or unset it to "
            "be asked") from None


def _existing_keystore(directory: Path) -> Path:
    from seedswarm.commands.keys import keystore_path

    path = keystore_path(directory)
    if not path.is_file():
        raise KeystoreError(f"no keystore at {path}: create one with `seedswarm keys new --out "
                            f"{directory}`, or pass the --keys DIR that holds keystore.json")
    return path


def checked_address(text: str) -> EvmAddress:
    """`text` as a checksummed address; ConfigError if it is none."""
    from eth_utils.address import is_address, to_checksum_address

    from protocol.domain_types import EvmAddress

    if not is_address(text):
        raise ConfigError(f"--address {text!r} is not a 0x-prefixed 20-byte address")
    return EvmAddress(to_checksum_address(text))


def connect_chain(url: str, chain_id: int, timeout_s: float = 5.0) -> Web3:
    """A Web3 on `url` that answered with `chain_id`; errors name the URL and the fix."""
    from adapters.chain.backends import EMBEDDED, connect

    if url == EMBEDDED:
        raise ConfigError("the network file's chain is 'embedded' (inside the operator's own "
                          "process): ask the operator for its JSON-RPC URL and pass --rpc URL")
    w3 = connect(url, timeout=timeout_s)
    try:
        found = int(w3.eth.chain_id)
    except Exception as exc:  # any transport failure means the same thing to the user
        raise ChainUnreachable(
            f"cannot reach the chain at {url} ({failure_reason(exc)}): start it, or fix the "
            "URL ([chain] url in the network file, or --rpc URL)") from exc
    if found != chain_id:
        raise ConfigError(f"the chain at {url} has chain id {found} but the network file says "
                          f"{chain_id}: the URL points at another chain; fix it or pass --rpc")
    return w3


def failure_reason(exc: BaseException) -> str:
    """A few words for why a connection failed (requests' messages run to several lines)."""
    text = str(exc)
    for needle, words in (("refused", "connection refused"), ("timed out", "timed out"),
                          ("Name or service not known", "unknown host"),
                          ("Temporary failure in name resolution", "unknown host"),
                          ("No route to host", "no route to host")):
        if needle in text:
            return words
    return type(exc).__name__


def require_contracts(w3: Web3, bundle: JoinBundle, url: str) -> None:
    """ConfigError unless the network file's Registry has code on this chain."""
    from eth_utils.address import to_checksum_address

    if len(w3.eth.get_code(to_checksum_address(bundle.chain.registry))) == 0:
        raise ConfigError(
            f"no Registry contract at {bundle.chain.registry} on {url}: the chain was reset or "
            "the network file is from another deployment; get the current network.toml")


@dataclass(frozen=True)
class NodeChain:
    """One account's view of the network's chain, as the commands use it."""

    bundle: JoinBundle
    url: str
    client: ChainClient
    address: EvmAddress
    """The account looked at (the keys' own, or --address)."""
    node_key: bytes | None
    """The keys' Ed25519 public key (None with a bare --address)."""
    keys: KeyBundle | None
    """Decrypted keys, only for commands that send transactions."""

    @property
    def w3(self) -> Web3:
        return self.client.w3


def open_node_chain(
    network: Path, keys: Path | None, address: str | None, rpc: str | None, *, signer: bool
) -> NodeChain:
    """Load the network file and the keys, connect, check the contracts are there.

    `signer`: the command sends transactions, so the keystore is decrypted; otherwise only its
    public half is read (or `address` used) and calls go out from a throwaway account.
    """
    from eth_account import Account

    from adapters.chain.client import ChainClient

    bundle = load_bundle(network)
    key_bundle = None
    node_key: bytes | None = None
    if signer:
        if keys is None:
            raise ConfigError("this sends a transaction: give --keys DIR (the key directory "
                              "from `seedswarm keys new`)")
        key_bundle = load_node_keys(keys)
        who, node_key = key_bundle.evm_address, key_bundle.node_key.public.raw
    elif address is not None:
        who = checked_address(address)
    elif keys is not None:
        info = keystore_info(keys)
        who, node_key = checked_address(info.evm_address), info.node_public_key
    else:
        raise ConfigError("give --keys DIR (your key directory) or --address 0x… (any account, "
                          "read-only)")
    url = rpc or bundle.chain.url
    w3 = connect_chain(url, bundle.chain.chain_id)
    require_contracts(w3, bundle, url)
    account = key_bundle.evm_account if key_bundle is not None else Account.create()
    client = ChainClient.connect(w3, bundle.chain.deployment, account)
    return NodeChain(bundle, url, client, who, node_key, key_bundle)


def parse_amount(text: str, *, in_wei: bool) -> Wei:
    """`text` ("1.5" units of 10^18 wei, or wei with `in_wei`) as a positive wei amount."""
    from protocol.domain_types import Wei

    try:
        value = Decimal(text) if not in_wei else Decimal(int(text))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"amount {text!r} is not a number (e.g. 1.5, or wei with --wei)"
                          ) from None
    wei = value if in_wei else value * UNIT
    if wei != wei.to_integral_value():
        raise ConfigError(f"amount {text!r} has more than 18 decimals")
    if wei <= 0:
        raise ConfigError(f"amount {text!r} must be positive")
    return Wei(int(wei))


def units(wei: int) -> float:
    """Wei as ETH / SEED (a float for JSON and tables)."""
    return wei / UNIT


def fmt_units(wei: int, unit: str) -> str:
    """Wei as a short decimal with its unit: 1.5 ETH, 0.000123 SEED."""
    text = f"{Decimal(wei) / UNIT:.6f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"


def fmt_duration(seconds: float) -> str:
    """4 s, 3 min 20 s, 2 h 05 min, 3 d 4 h."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86_400} d {s % 86_400 // 3600} h"


def faucet_hint(bundle: JoinBundle) -> str:
    """Where to get coins: the devnet's faucet if the network file names one."""
    if bundle.chain.faucet:
        return f"fund it from the faucet ({bundle.chain.faucet}, or `seedswarm join --faucet`)"
    return "send it some ETH"


def require_funds(node: NodeChain, value: int, action: str) -> None:
    """NotReady unless the account can pay `value` wei plus a transaction's gas."""
    balance = node.client.eth_balance(node.address)
    gas = GAS_BUDGET * int(node.w3.eth.gas_price)
    if balance < value + gas:
        need = fmt_units(value, "ETH") + " + gas" if value else "gas"
        raise NotReady(f"account {node.address} holds {fmt_units(balance, 'ETH')}, {action} "
                       f"needs {need}: {faucet_hint(node.bundle)}")


def print_json(data: dict[str, Any]) -> None:
    """One JSON object on stdout."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True))
