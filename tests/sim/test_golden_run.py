"""Golden runs: a fixed `seedswarm simulate` configuration ends on a recorded model hash.

The hashes were recorded on main before the code moved into its layers (commit 5844aa0, with
the flags then named --lr and --eps), so they prove the move changed no behaviour: miners'
work, the validator pipeline's scoring and certification (attackers included), the apply rule
and the model hash all compute exactly what they did. Any future change of a hash here is a
change of the protocol or of the scoring, and must be deliberate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.sim.test_simulate_cli import _app

FO_GAUNTLET = [
    "--task", "synthetic", "--base", "scratch", "--miners", "3", "--rounds", "4",
    "--codec", "fo", "--scalars", "64", "--outer-lr", "0.5", "--local-lr", "0.01",
    "--local-steps", "4", "--spsa-eps", "0.001", "--samples-per-miner", "16",
    "--width", "32", "--depth", "1", "--attackers", "noise=1,copycat=1", "--seed", "3",
]
ZO_LOWRANK_EQUAL = [
    "--task", "synthetic", "--base", "scratch", "--miners", "4", "--rounds", "4",
    "--codec", "zo", "--scalars", "32", "--outer-lr", "3.0", "--spsa-eps", "0.001",
    "--samples-per-miner", "16", "--width", "32", "--depth", "1", "--scoring", "equal",
    "--seed", "5", "--direction", "lowrank", "--direction-rank", "2",
]


@pytest.mark.parametrize(("flags", "final_hash"), [
    (FO_GAUNTLET, "61b5c428e100a52091dd23e087b1f7ecaefe4339ac6298c6d9d02ffc86214efc"),
    (ZO_LOWRANK_EQUAL, "589b79f6049046fe0acd43d2614d23a70d58cac4459bce9d29dc373c4349c2e4"),
], ids=["fo-gauntlet-attackers", "zo-lowrank-equal"])
def test_a_fixed_simulation_ends_on_its_recorded_hash(flags: list[str], final_hash: str,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = CliRunner().invoke(_app(), ["simulate", *flags, "--json", str(out)])
    assert result.exit_code == 0, result.output
    hashes = json.loads(out.read_text())["model_hashes"]
    assert len(hashes) == 4
    assert hashes[-1] == final_hash
