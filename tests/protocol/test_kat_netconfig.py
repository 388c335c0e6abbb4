"""Known answer: the network-configuration digest (format 1).

Two nodes are on the same network only if their configurations' digests are equal. The
canonical text is written out in full so that a change of a key name, of the value formatting
or of the format version shows as an edit here. Computed once and written down.

Expected to change deliberately with the next format version (a field rename is under way on
another branch): update both the text and the digests in that change, nowhere else.
"""

from __future__ import annotations

from protocol.codecs import Codec
from protocol.netconfig import NetworkConfig
from protocol.perturb import DirectionKind, DirectionSpec

HEADER = "# seedswarm network configuration: every node of the network must use it as is\n"
DEFAULT_BODY = """\
format = 1
network_id = "kat-net"
base_checkpoint_hash = "abababababababababababababababababababababababababababababababab"
task = "synthetic"
trainable = "lora:4"
codec = "zo"
direction = "gaussian"
direction_rank = 1
scalars_per_contribution = 256
spsa_eps = 0.001
outer_lr = 0.001
samples_per_miner = 16
max_contributions_per_round = 32
data_seed = 0
round_length_s = 30.0
epoch_length_rounds = 20
max_message_bytes = 65536
"""


def test_network_config_digest_format_1() -> None:
    # every default; the later FO fields at their defaults are neither written nor digested
    config = NetworkConfig(network_id="kat-net", base_checkpoint_hash="ab" * 32)
    assert config.to_toml() == HEADER + DEFAULT_BODY
    assert config.digest().hex() == (
        "4d28447c0bd1769e9139e944bb61e348a3f1a297138dd285117812d48baba643")


def test_network_config_digest_format_1_with_later_fields() -> None:
    # FO, low-rank 4, and the three later fields set: they are written and digested
    config = NetworkConfig(
        network_id="kat-net", base_checkpoint_hash="ab" * 32, codec=Codec.FO,
        direction=DirectionSpec(DirectionKind.LOWRANK, 4), fo_local_steps=8, fo_local_lr=3e-3,
        fo_weight_decay=0.01,
    )
    body = (DEFAULT_BODY.replace('codec = "zo"', 'codec = "fo"')
            .replace('direction = "gaussian"\ndirection_rank = 1',
                     'direction = "lowrank"\ndirection_rank = 4')
            + "fo_local_steps = 8\nfo_local_lr = 0.003\nfo_weight_decay = 0.01\n")
    assert config.to_toml() == HEADER + body
    assert config.digest().hex() == (
        "d8fcfb241d8a4efc4493468c7645965a5da83f4def1affe9751c5be40e5a346d")
