"""Known answer: the network-configuration digest (format 2).

Two nodes are on the same network only if their configurations' digests are equal. The
canonical text is written out in full so that a change of a key name, of the value formatting
or of the format version shows as an edit here. Computed once and written down.

Format 2 (this change's deliberate edit of the format-1 vectors): the rules were renamed to one
name per concept (scalars, round_length, epoch_length, local_steps, local_lr,
local_weight_decay), every field is written and digested (defaults included), and the defaults
are the network's one set (FO, K = 1024, the codec's outer learning rate).

Then (issue 13, deliberate): ``outer_momentum`` (the outer step's Nesterov momentum, 0 = plain
SGD) joined the rules after ``outer_lr``; both digests changed with it.
"""

from __future__ import annotations

from protocol.codecs import Codec
from protocol.netconfig import NetworkConfig
from protocol.perturb import DirectionKind, DirectionSpec

HEADER = "# seedswarm network configuration: every node of the network must use it as is\n"
DEFAULT_BODY = """\
format = 2
network_id = "kat-net"
base_checkpoint_hash = "abababababababababababababababababababababababababababababababab"
task = "synthetic"
trainable = "lora:4"
codec = "fo"
direction = "gaussian"
direction_rank = 1
scalars = 1024
spsa_eps = 0.001
outer_lr = 0.5
outer_momentum = 0.0
samples_per_miner = 16
max_contributions_per_round = 32
data_seed = 0
round_length = 30.0
epoch_length = 20
max_message_bytes = 65536
local_steps = 4
local_lr = 0.01
local_weight_decay = 0.0
"""


def _config(**changes: object) -> NetworkConfig:
    return NetworkConfig(network_id="kat-net", base_checkpoint_hash="ab" * 32, task="synthetic",
                         trainable="lora:4", **changes)  # type: ignore[arg-type]


def test_network_config_digest_format_2() -> None:
    # every rule at its default: all written, all digested
    config = _config()
    assert config.to_toml() == HEADER + DEFAULT_BODY
    assert config.digest().hex() == (
        "6f01d5a99c64328e605d5bc05c44f674677e8a3d45b008f2dcaac6cc06a55332")


def test_network_config_digest_format_2_zo_lowrank_local_work() -> None:
    # ZO (its own default outer learning rate), low-rank 4, and the local-work rules set
    config = _config(codec=Codec.ZO, direction=DirectionSpec(DirectionKind.LOWRANK, 4),
                     local_steps=8, local_lr=3e-3, local_weight_decay=0.01)
    body = (DEFAULT_BODY.replace('codec = "fo"', 'codec = "zo"')
            .replace('direction = "gaussian"\ndirection_rank = 1',
                     'direction = "lowrank"\ndirection_rank = 4')
            .replace("outer_lr = 0.5", "outer_lr = 3.0")
            .replace("local_steps = 4\nlocal_lr = 0.01\nlocal_weight_decay = 0.0",
                     "local_steps = 8\nlocal_lr = 0.003\nlocal_weight_decay = 0.01"))
    assert config.to_toml() == HEADER + body
    assert config.digest().hex() == (
        "1fdcbee13b45e7f4ae1b5e29480151810dd90e1844e6356fb52184f42bcd2ee9")
