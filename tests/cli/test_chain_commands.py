"""`seedswarm status|stake|rewards|claim|unstake|withdraw` against a served embedded chain.

One network per module; the tests run in file order along a node's life: look (read-only),
stake, get paid and claim, leave. Each asserts against what the chain itself says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from adapters.chain.backends import set_time
from adapters.chain.reward_history import WEIGHT_SCALE
from adapters.transport.stats import DropReason, TransportStats
from protocol.settlement.merkle import build_reward_tree
from runtime.peergate import GatePolicy, PeerGate
from runtime.service_shell import write_status
from tests.chain.harness import ETH
from tests.cli.served_chain import PASSWORD, Served, run_cli, serve, write_keys

pytestmark = pytest.mark.chain

Capsys = pytest.CaptureFixture[str]
Patch = pytest.MonkeyPatch


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve(tmp_path_factory.mktemp("served"), ticking=False)
    yield served
    served.server.stop()


def test_read_only_views_need_no_funds_and_no_password(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path
) -> None:
    stranger = Account.create().address  # never funded
    shown = run_cli(capsys, monkeypatch, "status", *served.args("--address", stranger, "--json"),
                    password=None).json()
    assert shown["registration"]["role"] == "none"
    assert shown["chain"]["epoch"] == 0 and shown["chain"]["url"] == served.url
    assert shown["node"]["found"] is False

    deployment = tmp_path / "deployment.json"
    served.net.suite.deployment.save(deployment)
    chain = run_cli(capsys, monkeypatch, "chain", "status", "--rpc", served.url,
                    "--deployment", str(deployment), "--json")
    assert chain.code == 0, chain.err
    assert len(chain.json()["validators"]) == 2
    from_file = run_cli(capsys, monkeypatch, "chain", "status", *served.args("--json"))
    assert from_file.json()["params"]["epoch_length"] == served.net.network.epoch_length
    missing = run_cli(capsys, monkeypatch, "chain", "status", "--rpc", served.url,
                      "--deployment", str(tmp_path / "nothing.json"))
    assert missing.code == 1 and "seedswarm chain deploy" in missing.err


def test_status_of_a_registered_node_before_its_first_epoch(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path
) -> None:
    gate = PeerGate(GatePolicy())
    gate.reject("peer-a", "bad_signature", "forged", time.time())
    gate.reject("peer-b", "bad_signature", "forged", time.time())
    gate.reject("peer-a", "wrong_round", "late", time.time())
    stats = TransportStats(logging.getLogger("test"))
    stats.record_drop(DropReason.MALFORMED, "garbage")
    write_status(tmp_path / "status.json", {
        "role": "miner", "round": 3, "model_hash": "ab" * 32, "time": time.time(),
        "gate": gate.snapshot(), "transport": stats.snapshot()})

    shown = run_cli(capsys, monkeypatch, "status", *served.args(
        "--keys", str(served.keys_dir), "--state-dir", str(tmp_path), "--json"),
        password=None).json()
    reg = shown["registration"]
    assert (reg["role"], reg["slot"], reg["stake_wei"]) == ("miner", 1, ETH)
    assert reg["node_key"] == served.keys.node_key.public.raw.hex()
    assert reg["node_key_matches"] is True
    registry = served.net.suite.registry
    wait = registry.epoch_end(0) - registry.latest_timestamp()
    assert reg["active"] is False and 0 < reg["active_in_s"] == wait
    assert shown["node"]["round"] == 3 and shown["node"]["model_hash"] == "ab" * 32
    assert shown["refusals"] == {"bad_signature": 2, "wrong_round": 1, "dropped_malformed": 1}

    text = run_cli(capsys, monkeypatch, "status", *served.args("--keys", str(served.keys_dir)))
    assert text.code == 0 and "not active yet" in text.out


def test_stake_adds_exactly_the_amount(served: Served, capsys: Capsys, monkeypatch: Patch) -> None:
    added = run_cli(capsys, monkeypatch, "stake", "0.5",
                    *served.args("--keys", str(served.keys_dir), "--json")).json()
    on_chain = served.joiner().registry.stake_of()
    assert added["added_wei"] == ETH // 2
    assert added["stake_wei"] == on_chain == ETH + ETH // 2
    assert added["tx"].startswith("0x")
    wei = run_cli(capsys, monkeypatch, "stake", "1000", "--wei",
                  *served.args("--keys", str(served.keys_dir), "--json")).json()
    assert wei["stake_wei"] == served.joiner().registry.stake_of() == on_chain + 1000


def test_rewards_are_the_chains_events_and_claim_mints_them(
    served: Served, capsys: Capsys, monkeypatch: Patch
) -> None:
    net, me = served.net, served.keys.evm_address
    ours = (20_000, 30_000)  # each validator's weight for the joiner's slot 1
    net.run_epoch(0, [[WEIGHT_SCALE - w, w] for w in ours])
    events = net.suite.incentives.contract.events
    paid = events.MinerRewarded().get_logs(from_block=0, argument_filters={"account": me})
    assert len(paid) == 1 and paid[0]["args"]["amount"] > 0

    shown = run_cli(capsys, monkeypatch, "rewards", *served.args(
        "--keys", str(served.keys_dir), "--json"), password=None).json()
    expected = [{"epoch": int(e["args"]["epoch"]), "role": "miner", "slot": 1,
                 "weight": e["args"]["consensus"] / WEIGHT_SCALE, "reward_wei": e["args"]["amount"],
                 "reward": e["args"]["amount"] / ETH, "claimed": False} for e in paid]
    assert shown["epochs"] == expected
    assert shown["epochs"][0]["weight"] == 30_000 / WEIGHT_SCALE  # the stake-weighted median
    assert shown["total"] == paid[0]["args"]["amount"] / ETH
    assert shown["claimable_wei"] == shown["total_wei"] == net.suite.incentives.claimable(me)

    validator = net.validators[1].address
    theirs = run_cli(capsys, monkeypatch, "rewards", *served.args(
        "--address", validator, "--json")).json()
    credited = events.ValidatorRewarded().get_logs(
        from_block=0, argument_filters={"validator": validator})
    assert [r["reward_wei"] for r in theirs["epochs"]] == [e["args"]["amount"] for e in credited]
    pool = net.economics.emission_per_epoch // 2
    assert theirs["epochs"][0]["weight"] == credited[0]["args"]["amount"] / pool

    status = run_cli(capsys, monkeypatch, "status", *served.args("--address", me, "--json"))
    performance = net.suite.incentives.miner_performances()[1]
    assert status.json()["last_scores"] == {"epoch": 0, "given": {},
                                            "own_performance": performance / WEIGHT_SCALE}
    assert status.json()["registration"]["active"] is True

    claimed = run_cli(capsys, monkeypatch, "claim", *served.args(
        "--keys", str(served.keys_dir), "--json")).json()
    assert claimed["claimed_wei"] == shown["claimable_wei"]
    assert served.joiner().token_balance() == claimed["balance_wei"] == claimed["claimed_wei"]
    assert net.suite.incentives.claimable(me) == 0

    after = run_cli(capsys, monkeypatch, "rewards", *served.args(
        "--keys", str(served.keys_dir), "--json")).json()
    assert [r["claimed"] for r in after["epochs"]] == [True]
    assert after["claimable"] == 0 and after["claimed_wei"] == claimed["claimed_wei"]

    again = run_cli(capsys, monkeypatch, "claim", *served.args(
        "--keys", str(served.keys_dir), "--json")).json()
    assert (again["claimed"], again["tx"]) == (0, None)
    assert "nothing to claim" in again["message"]


def test_a_merkle_paid_epoch_is_listed_as_claimed(
    served: Served, capsys: Capsys, monkeypatch: Patch
) -> None:
    net, me = served.net, served.keys.evm_address
    before = run_cli(capsys, monkeypatch, "rewards", *served.args("--address", me, "--json"))
    tree = build_reward_tree(1, {me: 5 * ETH, net.miners[0].address: 2 * ETH})
    net.goto_epoch_end(1)
    for validator in net.validators:  # 1 + 2 of 3 ETH: a stake majority
        validator.incentives.propose_root(1, tree.root, tree.total)
    net.miners[0].incentives.claim_merkle(1, me, 5 * ETH, tree.proof(me))

    after = run_cli(capsys, monkeypatch, "rewards", *served.args("--address", me, "--json"))
    rows = after.json()["epochs"]
    assert rows[:-1] == before.json()["epochs"]
    assert rows[-1] == {"epoch": 1, "role": "merkle", "slot": None, "weight": None,
                        "reward": 5.0, "reward_wei": 5 * ETH, "claimed": True}
    assert after.json()["claimed_wei"] == before.json()["claimed_wei"] + 5 * ETH


def test_unstake_then_withdraw_after_the_unbonding_delay(
    served: Served, capsys: Capsys, monkeypatch: Patch
) -> None:
    stake = served.joiner().registry.stake_of()
    left = run_cli(capsys, monkeypatch, "unstake", *served.args(
        "--keys", str(served.keys_dir), "--json")).json()
    assert left["unbonding_wei"] == stake
    # A miner's bond unbonds from the end of the epoch it left in.
    registry = served.net.suite.registry
    release = registry.epoch_end(registry.current_epoch()) + served.net.network.unbonding_delay
    assert left["release_time"] == release
    assert left["wait_s"] == release - registry.latest_timestamp()

    early = run_cli(capsys, monkeypatch, "withdraw", *served.args("--keys", str(served.keys_dir)))
    assert early.code == 1 and early.out == ""
    assert early.err.startswith("error: ") and early.err.count("\n") == 1
    assert "still unbonding: withdrawable in" in early.err

    set_time(served.net.w3, release + 1)
    before = served.joiner().eth_balance()
    done = run_cli(capsys, monkeypatch, "withdraw", *served.args(
        "--keys", str(served.keys_dir), "--json")).json()
    assert done["withdrawn_wei"] == stake
    gained = served.joiner().eth_balance() - before
    assert stake - ETH // 100 < gained < stake  # the stake back, less the gas


@pytest.mark.parametrize(("case", "needle"), [
    ("wrong password", "wrong password"),
    ("missing network file", "no network file at"),
    ("missing keystore", "no keystore at"),
    ("unregistered key", "is not registered on this network"),
    ("chain down", "cannot reach the chain at http://127.0.0.1:"),
    ("bad amount", "is not a number"),
])
def test_a_users_mistake_is_one_line_with_its_fix(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path, case: str, needle: str
) -> None:
    keys, network, password, amount = str(served.keys_dir), served.network_file, PASSWORD, "1"
    if case == "wrong password":
        password = "not the password"
    elif case == "missing network file":
        network = tmp_path / "network.toml"
    elif case == "missing keystore":
        keys = str(tmp_path / "nokeys")
    elif case == "unregistered key":
        stranger = write_keys(tmp_path / "stranger")
        served.net.w3.eth.send_transaction({  # type: ignore[typeddict-item]
            "from": served.net.w3.eth.accounts[0], "to": stranger.evm_address, "value": ETH})
        keys = str(tmp_path / "stranger")
    elif case == "chain down":
        network = tmp_path / "down.toml"
        network.write_text(served.network_file.read_text().replace(
            served.url, "http://127.0.0.1:9"))
    elif case == "bad amount":
        amount = "1,5"
    result = run_cli(capsys, monkeypatch, "stake", amount, "--network", str(network),
                     "--keys", keys, password=password)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert needle in result.err and "Traceback" not in result.err
    fixes = ("SEEDSWARM_PASSWORD", "--network PATH", "seedswarm keys new", "seedswarm join",
             "--rpc URL", "e.g. 1.5")
    assert any(fix in result.err for fix in fixes), result.err
