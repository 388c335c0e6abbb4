"""A network on the embedded chain served over loopback HTTP, as a joiner on another host sees
it: the contracts deployed by the chain tests' harness, a joiner's keystore, and the network
file that points at the served URL. Plus `run_cli`: the real `seedswarm` entry point, in
process, so an error's one-line form is what gets tested."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.chain.backends import connect, fund
from adapters.chain.client import ChainClient
from adapters.chain.embedded_rpc import EmbeddedRpcServer
from adapters.storage.keystore import KeyBundle, ScryptParams, encrypt_keystore
from protocol.netconfig import build_network
from seedswarm.commands.keys import PASSWORD_ENV, write_keystore
from seedswarm.launch.join_bundle import ChainInfo, GenesisInfo, JoinBundle, PeerInfo
from tests.chain.harness import ETH, Net, make_net

PASSWORD = "joiner password"
MODEL_HASH = bytes(range(32))


class StillRpcServer(EmbeddedRpcServer):
    """Serves without mining idle blocks: the tests move the chain's clock themselves, and
    eth-tester must not be touched by the ticker's thread and the test at once."""

    def _tick(self) -> None:
        return


@dataclass
class Served:
    """The served network and the joiner."""

    net: Net
    server: EmbeddedRpcServer
    keys: KeyBundle
    keys_dir: Path
    network_file: Path
    bundle: JoinBundle

    @property
    def url(self) -> str:
        return self.server.url

    def joiner(self) -> ChainClient:
        """The joiner's own client on the in-process chain (for the tests' assertions)."""
        return ChainClient.connect(self.net.w3, self.net.suite.deployment, self.keys.evm_account)

    def args(self, *more: str) -> list[str]:
        return ["--network", str(self.network_file), *more]


def write_keys(directory: Path) -> KeyBundle:
    """A keystore like `seedswarm keys new` writes, with a cheap KDF."""
    bundle = KeyBundle.generate()
    write_keystore(directory, encrypt_keystore(bundle, PASSWORD, scrypt=ScryptParams(n=2**6)),
                   force=True)
    return bundle


def write_bundle(path: Path, net: Net, url: str, peers: PeerInfo | None = None) -> JoinBundle:
    """The network file of `net`, its chain reached at `url`."""
    params, deployment = net.network, net.suite.deployment
    network = build_network("cli-net", MODEL_HASH, task="synthetic", trainable="lora:4",
                            miners=4, round_length=float(params.round_length),
                            epoch_length=params.epoch_length)
    bundle = JoinBundle(
        network=network,
        genesis=GenesisInfo(time=float(params.genesis_time), model_hash=MODEL_HASH.hex()),
        chain=ChainInfo(url=url, chain_id=deployment.chain_id, token=deployment.token,
                        registry=deployment.registry, incentives=deployment.incentives,
                        min_miner_stake=params.min_miner_stake,
                        min_validator_stake=params.min_validator_stake),
        peers=peers or PeerInfo("libp2p"),
    )
    bundle.save(path)
    return bundle


def serve(root: Path, *, ticking: bool, peers: PeerInfo | None = None) -> Served:
    """Deploy (one miner, validators staking 1 and 2 ETH), serve, and register the joiner as
    a miner with 1 ETH (slot 1) from an account holding 5 ETH."""
    w3 = connect()
    net = make_net(w3, miners=1, validator_stakes=(ETH, 2 * ETH))
    server = (EmbeddedRpcServer(w3) if ticking else StillRpcServer(w3)).start()
    keys = write_keys(root / "keys")
    fund(w3, keys.evm_address, 5 * ETH)
    client = ChainClient.connect(w3, net.suite.deployment, keys.evm_account)
    client.registry.register_miner(keys.node_key.public.raw, ETH)
    bundle = write_bundle(root / "network.toml", net, server.url, peers)
    return Served(net, server, keys, root / "keys", root / "network.toml", bundle)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            *args: str, password: str | None = PASSWORD) -> CliResult:
    """`seedswarm ARGS` through the console script's `main`; the password from the environment
    (None: unset, so a command that wanted it would prompt and fail)."""
    from seedswarm.cli import main

    if password is None:
        monkeypatch.delenv(PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(PASSWORD_ENV, password)
    monkeypatch.setattr(sys, "argv", ["seedswarm", *args])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
