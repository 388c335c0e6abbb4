"""bench.convergence's bookkeeping on a tiny plan: records, gap closure, both AdamW baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.convergence import Plan, Record, TaskPlan, main, rounds_to, run, score_task


def test_scores_come_from_the_tail_of_every_network_and_the_tuned_ceiling() -> None:
    base = 3.0
    adamw = Record("adamw", "adamw", "t", "full", [[base, 2.5, 2.0], [base, 2.6, 2.2]], 1.0,
                   4.0, 4.0, lr=0.01, tail=2)
    swarm = Record("fo-8", "fo", "t", "full", [[base, 2.9, 2.6], [base, 2.7, 2.6]], 1.0,
                   1.0, 4.0, tail=2)
    figures = score_task([adamw, swarm], miners=8)
    ceiling = (2.25 + 2.4) / 2  # mean of the last two rounds, then over the two networks
    assert adamw.final_val_loss == pytest.approx(ceiling)
    assert figures["adamw_gap_nats"] == pytest.approx(base - ceiling)
    assert adamw.gap_closed == pytest.approx(1.0)
    assert swarm.gap_closed == pytest.approx((base - 2.7) / (base - ceiling))
    # the mean swarm curve is [3.0, 2.8, 2.6]: 50% of the gap (2.6625) is first reached at 2
    assert swarm.rounds_to_50 == 2 and swarm.rounds_to_90 is None
    assert rounds_to([3.0, 2.0], 2.5) == 1 and rounds_to([3.0, 3.0], 2.5) is None


def test_a_tiny_plan_writes_every_required_key(tmp_path: Path) -> None:
    plan = Plan(rounds=2, miners=2, network_ids=("tiny-a", "tiny-b"), tail=1, fo_scalars=32,
                adamw_lrs=(3e-3, 1e-2), tasks=(TaskPlan("synthetic", "full"),), base="scratch",
                pretrain_steps=0)
    records, figures = run(plan, task_names=None, arm_names=["fo-2"], console=Console())
    names = [r.name for r in records]
    assert names == ["adamw", "adamw-large", "fo-2"]
    assert all(len(r.curves) == 2 and r.rounds == 2 for r in records)
    sweep = records[0].extra["adamw_lr_sweep"]
    assert set(sweep) == {"0.003", "0.01"} and records[0].final_val_loss == min(sweep.values())
    assert records[1].lr == records[0].lr  # the large-batch baseline runs at the tuned rate
    assert figures["synthetic"]["adamw_gap_nats"] > 0
    fo = records[2].to_json()
    required = {"name", "codec", "task", "rounds", "final_val_loss", "gap_closed",
                "bytes_per_miner_per_round", "rounds_to_50pct", "rounds_to_90pct", "wall_s"}
    assert required <= fo.keys() and fo["codec"] == "fo" and fo["task"] == "synthetic"
    assert 0 < fo["bytes_per_miner_per_round"] < 4 * 1000


def test_the_command_line_writes_records_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    import bench.convergence as convergence

    tiny = Plan(rounds=1, miners=2, network_ids=("c-a", "c-b"), tail=1, adamw_lrs=(3e-3,),
                tasks=(TaskPlan("synthetic", "full"),), base="scratch", pretrain_steps=0)
    monkeypatch.setattr(convergence, "QUICK", tiny)
    out = tmp_path / "conv.json"
    main(["--quick", "--arms", "adamw", "--json", str(out), "--plot", str(tmp_path / "c.png")])
    data = json.loads(out.read_text())
    assert [r["codec"] for r in data["records"]] == ["adamw", "adamw-large"]
    assert data["figures"]["synthetic"]["adamw_lr"] == 3e-3


def test_a_diverging_arm_is_recorded_not_fatal() -> None:
    plan = Plan(rounds=3, miners=2, network_ids=("d-a", "d-b"), tail=1, fo_scalars=32,
                fo_lr=1e6, adamw_lrs=(3e-3,), tasks=(TaskPlan("synthetic", "full"),),
                base="scratch", pretrain_steps=0)
    records, _ = run(plan, task_names=None, arm_names=["fo-2"], console=Console())
    fo = records[-1]
    assert fo.extra["diverged"] and fo.gap_closed is None
    data = fo.to_json()
    assert data["final_val_loss"] is None and None in data["val_loss"]
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN
