"""Gas per epoch of the two settlement paths, on anvil.

    python -m bench.gas [--json PATH] [--rpc URL] [--miners 16,64,256] [--validators 1,4,8]

For every (miners, validators) pair it deploys a fresh suite, registers everyone, and runs one
epoch each way:

- direct: every validator commits and reveals a random weight vector, then one `settle`
  transaction computes the stake-weighted median per miner, clips, and credits balances;
- Merkle: validators vote for the root of the same payouts (computed off-chain with the
  reference implementation) until one has a stake majority; miners then claim with proofs.

`gas_direct` = commits + reveals + settle; `gas_merkle` = root votes until final. The direct
path is the baseline: the table reports it as a multiple of the Merkle path. A miner's claim
(paid by the miner, not per epoch) is shown separately. Without --rpc, anvil is started from
contracts/node_modules on a free loopback port.

A second table prices a miner's bond: registering with it, a slash vote that does not yet
reach the stake majority, and the vote that does (it burns the bond and deregisters the miner),
with 4 validators staking 1, 2, 3 and 4.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import Web3

from adapters.chain.backends import chain_time, connect, funded_account, set_time
from adapters.chain.client import ChainClient
from adapters.chain.devnode import AnvilNode
from protocol.domain_types import ModelHash, PublicKey, Wei
from protocol.settlement.median import settle_reference
from protocol.settlement.merkle import build_reward_tree
from protocol.settlement.params import EconomicParams, NetworkParams
from protocol.settlement.weight_vector import commit_digest, normalize_weights

BLOCK_GAS_LIMIT = 30_000_000
STAKE = Wei(10**18)
EMISSION = Wei(1_000 * 10**18)


@dataclass(frozen=True)
class GasRecord:
    """Gas of one epoch for one network size."""

    miners: int
    validators: int
    gas_direct: int
    gas_merkle: int
    gas_commit: int
    gas_reveal: int
    gas_settle: int
    gas_claim_merkle: int
    settle_fits_block: bool


@dataclass(frozen=True)
class Accounts:
    """Funded accounts reused across deployments."""

    deployer: LocalAccount
    validators: list[LocalAccount]
    miners: list[LocalAccount]


def _fund_accounts(w3: Web3, miners: int, validators: int) -> Accounts:
    return Accounts(
        deployer=funded_account(w3, 100 * STAKE),
        validators=[funded_account(w3, 1_000 * STAKE)
                    for _ in range(max(validators, SLASH_VALIDATORS))],
        miners=[funded_account(w3, 100 * STAKE) for _ in range(max(miners, 2))],
    )


def _deploy(w3: Web3, accounts: Accounts, miners: int, validators: int) -> ChainClient:
    network = NetworkParams(
        genesis_time=chain_time(w3),
        round_length=10,
        epoch_length=6,
        genesis_model_hash=ModelHash(bytes(32)),
        min_miner_stake=STAKE,
        min_validator_stake=STAKE,
        unbonding_delay=3_600,
        max_miners=max(miners, 1),
        max_validators=max(validators, 1),
        immunity_epochs=1,
    )
    economics = EconomicParams(EMISSION, commit_window=20, reveal_window=20)
    return ChainClient.deploy(w3, accounts.deployer, network, economics)


def _register(
    w3: Web3, suite: ChainClient, accounts: Accounts, miners: int, validators: int
) -> tuple[list[ChainClient], list[ChainClient]]:
    vals = [ChainClient.connect(w3, suite.deployment, a) for a in accounts.validators[:validators]]
    mins = [ChainClient.connect(w3, suite.deployment, a) for a in accounts.miners[:miners]]
    pending = []
    for i, client in enumerate(vals):
        fn = client.registry.contract.functions.registerValidator(_key(1, i))
        pending.append((client, fn, (i + 1) * STAKE, client.sender.submit(fn, (i + 1) * STAKE)))
    for i, client in enumerate(mins):
        fn = client.registry.contract.functions.registerMiner(_key(2, i))
        pending.append((client, fn, STAKE, client.sender.submit(fn, STAKE)))
    for client, fn, value, tx_hash in pending:
        client.sender.confirm(fn, value, tx_hash)
    return vals, mins


def _key(kind: int, index: int) -> bytes:
    return bytes([kind]) + index.to_bytes(4, "big") + bytes(27)


def _random_rows(miners: int, validators: int, seed: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    base = [rng.random() for _ in range(miners)]
    # Validators roughly agree (shared base) with individual noise, as honest scorers would.
    return [normalize_weights([b * rng.uniform(0.7, 1.3) for b in base]) for _ in range(validators)]


def _direct_epoch(
    w3: Web3, suite: ChainClient, vals: list[ChainClient], rows: list[tuple[int, ...]]
) -> tuple[int, int, int]:
    windows = suite.incentives.windows(0)
    salt = bytes(range(32))
    set_time(w3, windows.commit_opens)
    commit = sum(
        v.incentives.commit(0, commit_digest(0, v.address, row, salt)).gas_used
        for v, row in zip(vals, rows, strict=True)
    )
    set_time(w3, windows.reveal_opens)
    reveal = sum(
        v.incentives.reveal(0, row, salt).gas_used for v, row in zip(vals, rows, strict=True)
    )
    set_time(w3, windows.settle_opens)
    settle = sum(r.gas_used for r in suite.incentives.settle(0))
    return commit, reveal, settle


def _merkle_epoch(
    w3: Web3,
    suite: ChainClient,
    vals: list[ChainClient],
    mins: list[ChainClient],
    rows: list[tuple[int, ...]],
) -> tuple[int, int]:
    epoch = 1
    stakes = [(i + 1) * STAKE for i in range(len(vals))]
    result = settle_reference(rows, stakes, len(mins), EMISSION)
    payouts: dict[str, int] = {
        m.address: r for m, r in zip(mins, result.miner_rewards, strict=True) if r
    }
    payouts.update({v.address: r for v, r in zip(vals, result.validator_rewards, strict=True) if r})
    tree = build_reward_tree(epoch, payouts)
    set_time(w3, suite.registry.epoch_end(epoch))
    votes = 0
    # Largest stakes first: the fewest votes that reach a majority.
    for v in reversed(vals):
        votes += v.incentives.propose_root(epoch, tree.root, tree.total).gas_used
        if suite.incentives.epoch_status(epoch).name == "MERKLE_SETTLED":
            break
    claimer = mins[0]
    claim = claimer.incentives.claim_merkle(
        epoch, claimer.address, tree.amount_of(claimer.address), tree.proof(claimer.address)
    )
    return votes, claim.gas_used


def measure(w3: Web3, accounts: Accounts, miners: int, validators: int) -> GasRecord:
    """Runs one direct and one Merkle epoch on a fresh deployment."""
    suite = _deploy(w3, accounts, miners, validators)
    vals, mins = _register(w3, suite, accounts, miners, validators)
    rows = _random_rows(miners, validators, seed=miners * 100 + validators)
    commit, reveal, settle = _direct_epoch(w3, suite, vals, rows)
    votes, claim = _merkle_epoch(w3, suite, vals, mins, rows)
    return GasRecord(
        miners=miners,
        validators=validators,
        gas_direct=commit + reveal + settle,
        gas_merkle=votes,
        gas_commit=commit,
        gas_reveal=reveal,
        gas_settle=settle,
        gas_claim_merkle=claim,
        settle_fits_block=settle <= BLOCK_GAS_LIMIT,
    )


@dataclass(frozen=True)
class BondGas:
    """Gas of a miner's bond: registering with it, and the votes that slash it."""

    register_miner: int
    deregister: int
    withdraw: int
    slash_vote: int
    slash_vote_final: int


SLASH_VALIDATORS = 4


def measure_bond(w3: Web3, accounts: Accounts) -> BondGas:
    """A fresh deployment with validators staking 1..4 and two miners: one leaves and
    withdraws after the unbonding delay, the other is slashed by votes of 1, 4 then 3 (5 of 10
    is no majority; 8 is)."""
    suite = _deploy(w3, accounts, 2, SLASH_VALIDATORS)
    vals, _ = _register(w3, suite, accounts, 0, SLASH_VALIDATORS)
    leaver, accused = (ChainClient.connect(w3, suite.deployment, a) for a in accounts.miners[:2])
    register = leaver.registry.register_miner(PublicKey(_key(2, 0)), STAKE).gas_used
    accused.registry.register_miner(PublicKey(_key(2, 1)), STAKE)
    deregister = leaver.registry.deregister().gas_used
    set_time(w3, suite.registry.unbonding_of(leaver.address)[1])
    withdraw = leaver.registry.withdraw().gas_used
    epoch = suite.registry.current_epoch()
    set_time(w3, suite.registry.epoch_end(epoch))
    evidence = hashlib.sha256(b"a fabricated contribution").digest()
    first = vals[0].registry.vote_slash(accused.address, epoch, evidence).gas_used
    vals[3].registry.vote_slash(accused.address, epoch, evidence)
    final = vals[2].registry.vote_slash(accused.address, epoch, evidence).gas_used
    if suite.registry.slash_support(accused.address, epoch, evidence) != (8 * STAKE, True):
        raise RuntimeError("the bond bench's slash did not complete: the Registry's rule changed")
    return BondGas(register, deregister, withdraw, first, final)


def _bond_table(bond: BondGas) -> Table:
    table = Table(title="Gas of a miner's bond (anvil)")
    for column in ("registerMiner (with bond)", "deregister", "withdraw", "voteSlash",
                   "voteSlash (slashes)"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{g:,}" for g in (bond.register_miner, bond.deregister, bond.withdraw,
                                       bond.slash_vote, bond.slash_vote_final)))
    return table


def _table(records: list[GasRecord]) -> Table:
    table = Table(title="Gas per epoch (anvil, 30M block gas limit)")
    for column in ("miners", "validators", "commit", "reveal", "settle", "direct total",
                   "merkle votes", "direct / merkle", "merkle claim (per miner)",
                   "settle % of block"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in records:
        table.add_row(
            str(r.miners),
            str(r.validators),
            f"{r.gas_commit:,}",
            f"{r.gas_reveal:,}",
            f"{r.gas_settle:,}",
            f"{r.gas_direct:,}",
            f"{r.gas_merkle:,}",
            f"{r.gas_direct / r.gas_merkle:.1f}x",
            f"{r.gas_claim_merkle:,}",
            f"{100 * r.gas_settle / BLOCK_GAS_LIMIT:.1f}%",
        )
    return table


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m bench.gas`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write one record per configuration here")
    parser.add_argument("--rpc", help="JSON-RPC URL of a dev chain (default: start anvil)")
    parser.add_argument("--miners", type=_ints, default=[16, 64, 256])
    parser.add_argument("--validators", type=_ints, default=[1, 4, 8])
    args = parser.parse_args(argv)
    node = None if args.rpc else AnvilNode().start()
    try:
        w3 = connect(args.rpc or node.url)  # type: ignore[union-attr]
        accounts = _fund_accounts(w3, max(args.miners), max(args.validators))
        records = [measure(w3, accounts, m, v) for m in args.miners for v in args.validators]
        bond = measure_bond(w3, accounts)
    finally:
        if node is not None:
            node.stop()
    console = Console(width=200)
    console.print(_table(records))
    console.print(_bond_table(bond))
    if args.json:
        rows = [asdict(r) for r in records] + [{"bond": asdict(bond)}]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
