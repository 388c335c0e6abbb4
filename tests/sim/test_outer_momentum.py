"""Outer Nesterov momentum as a network rule: every replica holds the same buffers, replay
from genesis rebuilds them, the state hash covers them, and checkpoints carry them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from protocol.errors import ConfigError, ConsensusError
from protocol.model_hash import model_hash
from runtime.model_state import ModelState
from seedswarm.sim.run import simulate
from seedswarm.sim.swarm import honest_swarm, run_rounds
from tests.sim.helpers import tiny_config
from training.genesis import build_genesis
from training.replica import ApplyRule, Replica


@pytest.mark.parametrize("codec", ["fo", "zo"])
def test_replicas_and_replay_from_genesis_rebuild_the_momentum(codec: str) -> None:
    config = tiny_config(codec=codec, scalars=16, rounds=3, check_replicas=True,
                         outer_momentum=0.9)
    genesis = build_genesis(config)
    start = [(name, p.detach().clone()) for name, p in genesis.named]
    swarm = honest_swarm(config, genesis)
    assert swarm.network.outer_momentum == 0.9
    # raises ConsensusError if a peer replica or the explicit term-by-term replay diverges
    records = run_rounds(swarm, config.rounds)
    assert swarm.explicit is not None and swarm.explicit.hash.hex() == records[-1].model_hash
    assert all(peer.model_hash.hex() == records[-1].model_hash for peer in swarm.peers)
    # the certified state hash covers the buffers: it is not the parameters' hash
    assert model_hash(genesis.named).hex() != records[-1].model_hash
    assert any(b.abs().sum() > 0 for b in swarm.replica.buffers)

    replay = Replica(start, ApplyRule.of(swarm.network))
    for entries, record in zip(swarm.log, records, strict=True):
        assert replay.apply_round(entries).hex() == record.model_hash
    for rebuilt, live in zip(replay.buffers, swarm.replica.buffers, strict=True):
        assert torch.equal(rebuilt, live)

    # a replica that lost its buffers (caught up on parameters alone) cannot follow
    amnesic = Replica.detached_copy(swarm.replica.named, ApplyRule.of(swarm.network),
                                    swarm.replica.round_index)
    assert amnesic.model_hash != swarm.replica.model_hash


def test_momentum_changes_the_trajectory_and_zero_momentum_is_plain_sgd() -> None:
    plain = simulate(tiny_config(rounds=2))
    zero = simulate(tiny_config(rounds=2, outer_momentum=0.0))
    nesterov = simulate(tiny_config(rounds=2, outer_momentum=0.9))
    assert [r.model_hash for r in plain.records] == [r.model_hash for r in zero.records]
    assert nesterov.records[0].model_hash != plain.records[0].model_hash
    assert nesterov.network.outer_momentum == 0.9


def test_a_checkpoint_carries_the_buffers_and_refuses_tampered_ones(tmp_path: Path) -> None:
    config = tiny_config(rounds=2, outer_momentum=0.9)
    genesis = build_genesis(config)
    swarm = honest_swarm(config, genesis)
    run_rounds(swarm, 2)
    network = swarm.network

    base = tmp_path / "base.safetensors"
    from training.checkpoint import save_checkpoint

    fresh = build_genesis(config)
    save_checkpoint(base, fresh.model, fresh.model.config)
    state = ModelState.from_base(network, base)
    for entries in swarm.log:
        state.replica.apply_round(entries)
    assert state.model_hash == swarm.replica.model_hash
    state.save(tmp_path)

    restored = ModelState.restore(network, tmp_path / "checkpoint.safetensors")
    assert restored.model_hash == state.model_hash and restored.round_index == 2
    for a, b in zip(restored.replica.buffers, state.replica.buffers, strict=True):
        assert torch.equal(a, b)
    # the restored node keeps following: same next state as the live one
    ctx = restored.round_context(swarm.miner_keys, swarm.work)
    assert ctx.state_hash() == ctx.base_model_hash == swarm.replica.model_hash

    # a checkpoint whose buffer was altered on disk no longer matches its recorded state hash
    path = tmp_path / "checkpoint.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.startswith("extra:"))
    tensors[key].view(-1)[0] += 1.0
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(ConfigError, match="do not match the recorded hash"):
        ModelState.restore(network, path)

    # the same checkpoint is refused by a network without momentum (another rule)
    other = dataclasses.replace(network, outer_momentum=0.0)
    with pytest.raises(ConfigError):
        ModelState.restore(other, tmp_path / "checkpoint.safetensors")


def test_a_replica_refuses_buffers_that_do_not_fit() -> None:
    config = tiny_config(rounds=0)
    genesis = build_genesis(config)
    swarm = honest_swarm(config, genesis)
    rule = dataclasses.replace(ApplyRule.of(swarm.network), momentum=0.9)
    with pytest.raises(ConsensusError, match="does not match"):
        Replica.detached_copy(genesis.named, rule, 0, [torch.zeros(3)] * len(genesis.named))
    with pytest.raises(ConsensusError, match="without outer momentum"):
        Replica.detached_copy(genesis.named, ApplyRule.of(swarm.network), 0,
                              [torch.zeros_like(t) for _, t in genesis.named])
