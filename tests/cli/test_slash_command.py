"""`seedswarm slash` against a served embedded chain: a validator's vote on a fabrication.

The served network has validators staking 1 and 2 ETH and the joiner as a miner; a third
validator registered here from a keystore stakes 4 ETH, so alone it holds 4 of 7: a majority."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.chain.backends import fund, set_time
from adapters.chain.client import ChainClient
from protocol.settlement.params import Role
from protocol.settlement.slashing import evidence_hash
from tests.chain.harness import ETH
from tests.cli.served_chain import Served, run_cli, serve, write_keys

pytestmark = pytest.mark.chain

Capsys = pytest.CaptureFixture[str]
Patch = pytest.MonkeyPatch


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve(tmp_path_factory.mktemp("served"), ticking=False)
    yield served
    served.server.stop()


def test_a_majority_validator_slashes_the_joiners_bond(
    served: Served, capsys: Capsys, monkeypatch: Patch, tmp_path: Path
) -> None:
    net = served.net
    validator_keys = write_keys(tmp_path / "validator")
    fund(net.w3, validator_keys.evm_address, 10 * ETH)
    ChainClient.connect(net.w3, net.suite.deployment, validator_keys.evm_account
                        ).registry.register_validator(validator_keys.node_key.public.raw, 4 * ETH)
    small = net.validators[0]  # 1 of 7
    epoch = net.suite.registry.current_epoch()
    contribution = tmp_path / "contribution.bin"
    contribution.write_bytes(b"the joiner's signed contribution")
    miner_key = served.keys.node_key.public.raw.hex()
    args = ["slash", miner_key, str(epoch), "--evidence-file", str(contribution)]

    early = run_cli(capsys, monkeypatch, *args, *served.args("--keys", str(tmp_path / "validator")))
    assert early.code == 1 and f"epoch {epoch} has not ended" in early.err
    set_time(net.w3, net.suite.registry.epoch_end(epoch))
    stranger = write_keys(tmp_path / "stranger")
    fund(net.w3, stranger.evm_address, ETH)
    outsider = run_cli(capsys, monkeypatch, *args,
                       *served.args("--keys", str(tmp_path / "stranger")))
    assert outsider.code == 1 and "was no validator at the end of epoch" in outsider.err

    small.registry.vote_slash(served.keys.evm_address, epoch, evidence_hash(
        contribution.read_bytes()))  # a minority: nothing happens
    assert served.joiner().registry.role_of() == Role.MINER
    voted = run_cli(capsys, monkeypatch, *args, *served.args(
        "--keys", str(tmp_path / "validator"), "--json")).json()
    assert voted["slashed"] is True
    assert (voted["support_wei"], voted["total_stake_wei"]) == (5 * ETH, 7 * ETH)
    assert voted["evidence"] == evidence_hash(contribution.read_bytes()).hex()
    assert voted["miner"] == served.keys.evm_address
    assert served.joiner().registry.role_of() == Role.NONE
    assert net.suite.registry.total_slashed() == ETH

    bad = run_cli(capsys, monkeypatch, "slash", miner_key, str(epoch), "--evidence", "12",
                  *served.args("--keys", str(tmp_path / "validator")))
    assert bad.code == 1 and bad.err.count("\n") == 1 and "64 hex digits" in bad.err
