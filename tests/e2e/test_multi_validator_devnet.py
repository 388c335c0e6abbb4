"""Three validators with unequal stakes and three miners, each an OS process over libp2p, with
the embedded chain: every validator scores every round, the others review and endorse the
leader's certificate, rounds are applied only once final, and all replicas agree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from seedswarm.devnet.local_network import run_devnet
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

ROUNDS = 4


def test_three_validators_review_and_endorse_over_libp2p(tmp_path: Path) -> None:
    # three validators commit and reveal through one embedded (slow) chain: the derived
    # windows grow with the validator count (devnet.schedule), which this run relies on
    spec = DevnetSpec(miners=3, validators=3, rounds=ROUNDS, transport="libp2p",
                      chain="embedded", workdir=tmp_path, startup_s=15)
    assert DevnetSchedule.derive(spec, 3).commit_window >= 8
    result = asyncio.run(run_devnet(spec))
    hashes, rounds = result["final_model_hashes"], result["final_rounds"]
    assert set(rounds.values()) == {ROUNDS}, rounds
    assert len(set(hashes.values())) == 1, hashes
    assert all(amount > 0 for amount in result["rewards"].values()), result["rewards"]

    validators = {n: s for n, s in result["nodes"].items() if n.startswith("validator")}
    assert len(validators) == 3
    assert sum(s["certified"] for s in validators.values()) >= ROUNDS
    for name, status in validators.items():
        # its own scoring of every round, whoever led it, fills its books
        assert status["scored"] >= ROUNDS, (name, status["scored"])
        assert status["ledger"]["last_round"] == ROUNDS - 1, name
        scores = {miner: w for epoch in status["ledger"]["epochs"].values()
                  for miner, w in epoch["scores"].items()}
        # its own reward scores: every honest miner improved the model and earned some
        assert len(scores) == 3 and all(w > 0 for w in scores.values()), (name, scores)
        if status["certified"] > 0:  # no leader holds a stake majority: peers endorsed it
            assert status["endorsements"] > 0, name
        assert status["disputed"] == 0, (name, status["disputes"])
    # a validator that did not lead every round reviewed and approved the others' certificates
    assert sum(s["approvals"] for s in validators.values()) >= ROUNDS
    assert any(s["certified"] < ROUNDS for s in validators.values())
