"""The join bundle: exact round trip, and every damaged file refused with its section named."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from protocol.domain_types import EvmAddress
from protocol.errors import ConfigError
from protocol.netconfig import build_network
from seedswarm.launch.join_bundle import ChainInfo, GenesisInfo, JoinBundle, PeerInfo

HASH = bytes(range(32))


def address(byte: str) -> EvmAddress:
    return EvmAddress(to_checksum_address("0x" + byte * 20))


def bundle(**peers: object) -> JoinBundle:
    network = build_network("testnet-7", HASH, task="synthetic", trainable="lora:4", miners=3,
                            scalars=64)
    return JoinBundle(
        network=network,
        genesis=GenesisInfo(time=1_765_000_000.5, model_hash=HASH.hex(),
                            checkpoint="base.safetensors", task_fingerprint="ab" * 8),
        chain=ChainInfo(url="http://10.0.0.1:8545", chain_id=31337, token=address("11"),
                        registry=address("22"), incentives=address("33"),
                        deployment_block=7, min_miner_stake=10**20,
                        min_validator_stake=3 * 10**21, faucet="http://10.0.0.1:8600"),
        peers=PeerInfo(**({"transport": "libp2p",
                           "bootstrap": ("/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWabc",)} | peers)),
    )


def test_round_trip_is_exact_and_amounts_beyond_64_bits_survive(tmp_path: Path) -> None:
    original = bundle()
    path = tmp_path / "network.toml"
    original.save(path)
    back = JoinBundle.load(path)
    assert back == original
    assert back.chain.min_validator_stake == 3 * 10**21  # > 2^63: written as a decimal string
    assert back.network.digest() == original.network.digest()
    assert back.to_toml() == original.to_toml()
    assert back.checkpoint_path(path) == tmp_path / "base.safetensors"
    assert back.chain.deployment.registry == address("22")


def test_nothing_secret_is_written() -> None:
    text = bundle().to_toml().lower()
    assert "password" not in text and "private" not in text and "keystore" not in text


@pytest.mark.parametrize(("edit", "named"), [
    (lambda t: t.replace("scalars = 64", "scalars = 65"), "digest"),
    (lambda t: t.replace('format = "seedswarm-network-1"', 'format = "x"'), "format"),
    (lambda t: t.replace("[peers]", "[pears]"), "peers"),
    (lambda t: t.replace("chain_id = 31337", "chain_id = 31337\nchainid = 1"), "chainid"),
    (lambda t: t.replace('min_miner_stake = "100000000000000000000"', 'min_miner_stake = "x"'),
     "chain.min_miner_stake"),
    (lambda t: t.replace('transport = "libp2p"', 'transport = "carrier-pigeon"'),
     "peers.transport"),
    (lambda t: t + "[[[", "TOML"),
    (lambda t: t.replace(address("33"), "0x33"), "chain.incentives"),
])
def test_a_damaged_file_is_refused_by_name(edit: object, named: str) -> None:
    text = bundle().to_toml()
    edited = edit(text)  # type: ignore[operator]
    assert edited != text
    with pytest.raises(ConfigError, match=named):
        JoinBundle.from_toml(edited)


def test_mqtt_needs_a_broker_url_and_splits_it() -> None:
    with pytest.raises(ConfigError, match="broker"):
        PeerInfo(transport="mqtt")
    peers = bundle(transport="mqtt", bootstrap=(), broker="mqtt://10.0.0.1:1884").peers
    assert peers.broker_host_port == ("10.0.0.1", 1884)


def test_genesis_must_name_the_networks_base_model() -> None:
    good = bundle()
    with pytest.raises(ConfigError, match="model_hash"):
        JoinBundle(good.network, GenesisInfo(time=1.0, model_hash="00" * 32), good.chain,
                   good.peers)


def test_a_missing_file_says_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        JoinBundle.load(tmp_path / "missing.toml")
