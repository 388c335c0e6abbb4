"""Network configuration: validation, TOML round trip, digest."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from protocol.codecs import Codec
from protocol.encoding import MAX_MESSAGE_BYTES
from protocol.errors import ConfigError
from protocol.netconfig import DEFAULT_OUTER_LR, NetworkConfig, build_network, rule_default
from protocol.perturb import DirectionKind, DirectionSpec

HASH = "ab" * 32


def _config(**changes: Any) -> NetworkConfig:
    base = NetworkConfig(
        network_id="testnet-1",
        base_checkpoint_hash=HASH,
        task="text:/data/my corpus/ünïcode \"quoted\" \\ path.txt",
        trainable="lora:4",
        codec=Codec.FO,
        direction=DirectionSpec(DirectionKind.LOWRANK, 3),
        scalars=512,
        spsa_eps=1e-5,
        outer_lr=0.1 + 0.2,  # not a short decimal: the exact float must survive
        samples_per_miner=8,
        max_contributions_per_round=16,
        data_seed=2**63 - 1,
        round_length=12.5,
        epoch_length=10,
        max_message_bytes=8192,
    )
    return dataclasses.replace(base, **changes)


def test_toml_round_trip_is_exact() -> None:
    config = _config()
    text = config.to_toml()
    back = NetworkConfig.from_toml(text)
    assert back == config
    assert back.outer_lr == 0.1 + 0.2
    assert back.to_toml() == text


def test_defaults_round_trip_and_load(tmp_path: Path) -> None:
    config = NetworkConfig(network_id="local", base_checkpoint_hash=HASH, task="synthetic",
                           trainable="lora:4")
    path = tmp_path / "net.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert NetworkConfig.load(path) == config
    with pytest.raises(ConfigError):
        NetworkConfig.load(tmp_path / "missing.toml")


def test_digest_is_stable_and_sensitive() -> None:
    config = _config()
    assert config.digest() == NetworkConfig.from_toml(config.to_toml()).digest()
    assert len(config.digest()) == 32
    # Formatting and comments of the input do not matter; values do.
    reformatted = "\n\n# a comment\n" + config.to_toml().replace(" = ", "=")
    assert NetworkConfig.from_toml(reformatted).digest() == config.digest()
    # An int where a float is expected means the same network.
    assert _config(round_length=30).digest() == _config(round_length=30.0).digest()
    changed = [
        _config(network_id="testnet-2"),
        _config(outer_lr=0.3),
        _config(direction=DirectionSpec(DirectionKind.LOWRANK, 2)),
        _config(codec=Codec.ZO),
        _config(data_seed=0),
    ]
    digests = {config.digest(), *(c.digest() for c in changed)}
    assert len(digests) == len(changed) + 1


def test_known_digest() -> None:
    # Pinned: a change here silently splits existing networks.
    config = NetworkConfig(network_id="local", base_checkpoint_hash=HASH, task="synthetic",
                           trainable="lora:4")
    assert config.digest().hex()[:16] == KNOWN_DIGEST_PREFIX


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("network_id", ""),
        ("network_id", "has space"),
        ("base_checkpoint_hash", "AB" * 32),
        ("base_checkpoint_hash", "ab" * 31),
        ("task", ""),
        ("trainable", "line\nbreak"),
        ("codec", "zo"),
        ("scalars", 0),
        ("scalars", 10**6),
        ("spsa_eps", 0.0),
        ("spsa_eps", float("nan")),
        ("outer_lr", -1.0),
        ("outer_lr", float("inf")),
        ("samples_per_miner", 0),
        ("max_contributions_per_round", 0),
        ("data_seed", -1),
        ("data_seed", 2**63),
        ("round_length", 0),
        ("epoch_length", True),
        ("max_message_bytes", 600),
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        _config(**{field: value})


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t.replace("samples_per_miner = 8", 'samples_per_miner = "8"'),
         "samples_per_miner"),
        (lambda t: t.replace("data_seed = 9223372036854775807", "data_seed = 1.5"), "data_seed"),
        (lambda t: t.replace('codec = "fo"', 'codec = "sgd"'), "codec"),
        (lambda t: t.replace('direction = "lowrank"', 'direction = "sparse"'), "direction"),
        (lambda t: t + "surprise = 1\n", "surprise"),
        (lambda t: t.replace("format = 2", "format = 1"), "format"),
        (lambda t: t.replace("direction_rank = 3", "direction_rank = 0"), "rank"),
        (lambda t: t.replace('network_id = "testnet-1"\n', ""), "network_id"),
        (lambda t: t + "[[[", "TOML"),
    ],
)
def test_bad_toml_is_a_config_error(edit: Any, key: str) -> None:
    text = _config().to_toml()
    edited = edit(text)
    assert edited != text
    with pytest.raises(ConfigError, match=key):
        NetworkConfig.from_toml(edited)


KNOWN_DIGEST_PREFIX = "cba13264aae6cee6"  # format 2 with outer_momentum (issue 13)


def test_every_field_is_written_and_digested_defaults_included() -> None:
    default = NetworkConfig(network_id="local", base_checkpoint_hash=HASH, task="synthetic",
                            trainable="lora:4")
    keys = [line.split(" = ")[0] for line in default.to_toml().splitlines()[1:]]
    fields = [f.name for f in dataclasses.fields(NetworkConfig)]
    assert keys == ["format", *fields[:6], "direction_rank", *fields[6:]]
    custom = _config(local_steps=8, local_lr=3e-3, local_weight_decay=0.01)
    text = custom.to_toml()
    assert "local_steps = 8" in text and "local_weight_decay = 0.01" in text
    back = NetworkConfig.from_toml(text)
    assert back == custom and back.digest() == custom.digest() != _config().digest()
    assert _config(local_lr=1).local_lr == 1.0
    for field, value in (("local_steps", 0), ("local_lr", 0.0), ("local_weight_decay", -1.0)):
        with pytest.raises(ConfigError, match=field):
            _config(**{field: value})


@pytest.mark.parametrize(("codec", "expected"), [(Codec.FO, 0.5), (Codec.ZO, 3.0)])
def test_the_outer_learning_rate_defaults_by_codec_in_one_place(codec: Codec,
                                                                 expected: float) -> None:
    config = NetworkConfig(network_id="local", base_checkpoint_hash=HASH, task="synthetic",
                           trainable="lora:4", codec=codec)
    assert config.outer_lr == DEFAULT_OUTER_LR[codec] == expected
    assert f"outer_lr = {expected}" in config.to_toml()  # the digest covers the value in force
    assert _config(codec=codec, outer_lr=0.25).outer_lr == 0.25


def test_build_network_fills_the_rules_left_unset_with_their_defaults() -> None:
    built = build_network("local", bytes.fromhex(HASH), task="synthetic", trainable="lora:4",
                          miners=3, scalars=64, outer_lr=None, local_lr=None)
    assert built.scalars == 64
    assert built.outer_lr == DEFAULT_OUTER_LR[rule_default("codec")]
    assert built.local_lr == rule_default("local_lr") == 1e-2
    assert built.max_contributions_per_round == 32  # at least 32
    assert build_network("local", bytes(32), task="synthetic", trainable="lora:4",
                         miners=100).max_contributions_per_round == 100  # one per miner
    assert build_network("local", bytes(32), task="synthetic", trainable="lora:4",
                         miners=10_000).max_contributions_per_round == 512  # a certificate's max
    with pytest.raises(ConfigError, match="spsa"):
        build_network("local", bytes(32), task="synthetic", trainable="lora:4", miners=1,
                      spsa=1.0)
    with pytest.raises(ConfigError, match="not a network parameter"):
        rule_default("learning_rate")


def test_max_message_bytes_is_capped_at_the_envelope_limit() -> None:
    assert _config(max_message_bytes=MAX_MESSAGE_BYTES).max_message_bytes == MAX_MESSAGE_BYTES
    with pytest.raises(ConfigError):
        _config(max_message_bytes=MAX_MESSAGE_BYTES + 1)
    with pytest.raises(ConfigError):
        _config(max_message_bytes=16 * 1024 * 1024)
