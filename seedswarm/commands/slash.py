"""`seedswarm slash`: a validator's vote that a miner fabricated a contribution.

A miner registers with a bond (the network's minimum miner stake, `seedswarm join --role miner
--stake`). When validators holding more than half of the validator stake at the end of the
accused epoch vote for the same (miner, epoch, evidence), the Registry burns the bond,
deregisters the miner and bans its node key. The evidence is the SHA-256 of the miner's signed
contribution as received: every validator that recomputed it and found it fabricated names the
same hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from protocol.errors import ConfigError
from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    JsonOption,
    KeysOption,
    NetworkOption,
    NotReady,
    RpcOption,
    fmt_units,
    open_node_chain,
    print_json,
    require_funds,
    units,
)

if TYPE_CHECKING:
    from protocol.domain_types import EvmAddress
    from seedswarm.commands.chain_context import NodeChain


def slash(
    miner: Annotated[str, typer.Argument(
        help="The accused miner: its Ed25519 node key (64 hex digits) or its 0x account.")],
    epoch: Annotated[int, typer.Argument(help="The epoch of the fabricated contribution.")],
    evidence: Annotated[str | None, typer.Option(
        "--evidence", help="SHA-256 of the signed contribution (64 hex digits).")] = None,
    evidence_file: Annotated[Path | None, typer.Option(
        "--evidence-file", help="The signed contribution's bytes: hashed here.")] = None,
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote, as a validator, that MINER fabricated a contribution in EPOCH.

    Votes of more than half the validator stake at EPOCH's end burn the miner's bond.

    The miner is also deregistered and its node key banned; a minority's votes do nothing.

    Example: seedswarm slash 0x3f..9a 12 --evidence-file contribution.bin --keys keys/
    """
    digest = _evidence(evidence, evidence_file)
    node = open_node_chain(network, keys, None, rpc, signer=True)
    registry = node.client.registry
    account = _accused(node, miner)
    end = registry.epoch_end(epoch)
    now = registry.latest_timestamp()
    if now < end:
        raise NotReady(f"epoch {epoch} has not ended (chain time {now}, ends at {end}): vote "
                       "once it has, so that the stakes counted are final")
    stake = registry.validator_stake_at(end, node.address)
    if stake == 0:
        raise NotReady(f"{node.address} was no validator at the end of epoch {epoch}: only "
                       "stake validating then votes on it")
    require_funds(node, 0, "voting")
    tx = registry.vote_slash(account, epoch, digest)
    support, slashed = registry.slash_support(account, epoch, digest)
    total = registry.total_validator_stake_at(end)
    report = {"miner": account, "epoch": epoch, "evidence": digest.hex(),
              "voter": node.address, "vote_wei": stake, "support": units(support),
              "support_wei": support, "total_stake_wei": total, "slashed": slashed,
              "tx": tx.tx_hash}
    if as_json:
        print_json(report)
        return
    outcome = ("slashed: its bond is burned and it is deregistered" if slashed else
               f"not slashed yet: needs more than {fmt_units(total // 2, 'ETH')}")
    Console().print(f"voted to slash {account} for epoch {epoch}: "
                    f"{fmt_units(support, 'ETH')} of {fmt_units(total, 'ETH')} so far, "
                    f"{outcome} (tx {tx.tx_hash})", highlight=False)


def _evidence(evidence: str | None, evidence_file: Path | None) -> bytes:
    if (evidence is None) == (evidence_file is None):
        raise ConfigError("give exactly one of --evidence HASH (64 hex digits) or "
                          "--evidence-file PATH (the signed contribution)")
    if evidence_file is not None:
        try:
            data = evidence_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {evidence_file}: {exc.strerror}: pass the file "
                              "holding the signed contribution") from None
        if not data:
            raise ConfigError(f"{evidence_file} is empty: pass the file holding the signed "
                              "contribution")
        from protocol.settlement.slashing import evidence_hash

        return evidence_hash(data)
    assert evidence is not None
    text = evidence.removeprefix("0x")
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise ConfigError(f"--evidence {evidence!r} is not a SHA-256 (64 hex digits): hash the "
                          "signed contribution, or pass it with --evidence-file")
    return digest


def _accused(node: NodeChain, miner: str) -> EvmAddress:
    from eth_utils.address import is_address, to_checksum_address

    from protocol.domain_types import EvmAddress, PublicKey

    if miner.startswith("0x") and is_address(miner):
        return EvmAddress(to_checksum_address(miner))
    try:
        key = bytes.fromhex(miner)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"miner {miner!r} is neither a 0x account nor a node key (64 hex "
                          "digits)")
    account = node.client.registry.bonded_account_of(PublicKey(key))
    if account is None:
        raise NotReady(f"no miner ever registered a bond under node key {miner}: check the key "
                       "the contribution was signed with")
    return account


def register(app: typer.Typer) -> None:
    """Adds `seedswarm slash`."""
    app.command("slash")(slash)
