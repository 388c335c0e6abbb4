"""The checks behind `seedswarm doctor`: each returns one Check naming what it found and, when it
fails, the fix. No check raises: a broken environment is what they are there to report."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.errors import SeedswarmError

if TYPE_CHECKING:
    from web3 import Web3

    from adapters.chain.standing import Standing
    from adapters.storage.keystore import KeyBundle
    from seedswarm.launch.join_bundle import JoinBundle

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
SKEW_WARN_S = 5.0
"""Clock skew worth a warning: block timestamps and local time should agree within seconds."""
_HOST_PORT = re.compile(r"^/(?:ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status != FAIL


def connect_timeout_s(round_length: float) -> float:
    """TCP connect timeout for peers: a tenth of a round, within [0.5, 3] seconds."""
    return min(3.0, max(0.5, round_length / 10))


def check_python() -> Check:
    required = _requires_python()
    found = ".".join(str(v) for v in sys.version_info[:3])
    if sys.version_info[:2] >= required:
        return Check("python", OK, f"Python {found}")
    return Check("python", FAIL, f"Python {found}",
                 f"install Python {required[0]}.{required[1]} or newer")


def _requires_python() -> tuple[int, int]:
    try:
        spec = importlib.metadata.metadata("seedswarm")["Requires-Python"] or ">=3.11"
    except importlib.metadata.PackageNotFoundError:
        spec = ">=3.11"
    major, minor = re.findall(r"\d+", spec)[:2]
    return int(major), int(minor)


def check_torch() -> Check:
    pinned = _pinned("torch")
    try:
        torch = importlib.import_module("torch")
    except Exception as exc:  # a broken wheel raises more than ImportError
        return Check("torch", FAIL, f"cannot import torch: {exc}",
                     f"pip install torch=={pinned or '<the pinned version>'} (the CPU wheel)")
    installed = str(getattr(torch, "__version__", "?"))
    if pinned and installed.split("+")[0] != pinned:
        return Check("torch", FAIL, f"torch {installed}, this seedswarm pins {pinned}",
                     f"pip install torch=={pinned}: scoring must match the other nodes' exactly")
    return Check("torch", OK, f"torch {installed}")


def _pinned(package: str) -> str | None:
    try:
        requires = importlib.metadata.requires("seedswarm") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        match = re.fullmatch(rf"{package}==([\w.]+)", line.split(";")[0].strip())
        if match:
            return match.group(1)
    return None


def check_disk(state_dir: Path, min_free_gb: float) -> Check:
    probe = state_dir.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_gb = shutil.disk_usage(probe).free / 2**30
    detail = f"{free_gb:.1f} GiB free for {state_dir}"
    if free_gb >= min_free_gb:
        return Check("disk", OK, detail)
    return Check("disk", FAIL, f"{detail} (checkpoints and the log need {min_free_gb:g} GiB)",
                 "free space there, or pass --state-dir on a larger disk")


def check_keys(keys: Path) -> tuple[Check, KeyBundle | None]:
    from seedswarm.commands.chain_context import load_node_keys

    try:
        bundle = load_node_keys(keys)
    except SeedswarmError as exc:
        return Check("keys", FAIL, *cause_and_fix(exc)), None
    return Check("keys", OK, f"peer {bundle.peer_id}, account {bundle.evm_address}"), bundle


def cause_and_fix(exc: SeedswarmError) -> tuple[str, str]:
    """The project's errors read "cause: fix"."""
    cause, _, fix = str(exc).rpartition(": ")
    return (cause, fix) if cause else (str(exc), "")


def check_rpc(url: str, chain_id: int) -> tuple[Check, Web3 | None]:
    from seedswarm.commands.chain_context import connect_chain

    try:
        w3 = connect_chain(url, chain_id)
    except SeedswarmError as exc:
        return Check("rpc", FAIL, *cause_and_fix(exc)), None
    return Check("rpc", OK, f"{url} answers, chain id {chain_id}"), w3


def check_clock(w3: Web3, round_length: float) -> Check:
    from adapters.chain.backends import chain_time

    skew = time.time() - chain_time(w3)
    detail = f"local clock {abs(skew):.1f} s {'ahead of' if skew >= 0 else 'behind'} the chain"
    fix = "sync the clock (timedatectl set-ntp true, or chrony / ntpd)"
    if abs(skew) > round_length:
        return Check("clock", FAIL, f"{detail}, more than a round ({round_length:g} s)", fix)
    if abs(skew) > SKEW_WARN_S:
        return Check("clock", WARN, f"{detail} (a node works to the round clock)", fix)
    return Check("clock", OK, detail)


def check_contracts(w3: Web3, bundle: JoinBundle) -> Check:
    """Code at the three addresses, every function of this seedswarm's ABI in it, and the
    Incentives contract wired to the Registry and token the network file names."""
    from eth_utils.address import to_checksum_address

    from adapters.chain.artifacts import load_artifact, load_manifest

    chain = bundle.chain
    fix = "get the current network.toml from the operator, or the seedswarm version it runs"
    for name, address in (("SeedswarmToken", chain.token), ("Registry", chain.registry),
                          ("Incentives", chain.incentives)):
        code = bytes(w3.eth.get_code(to_checksum_address(address)))
        if not code:
            return Check("contracts", FAIL, f"no {name} code at {address}", fix)
        missing = [f for f in _functions(name) if _selector(f) not in code]
        if missing:
            return Check("contracts", FAIL, f"{name} at {address} lacks {missing[:3]}: another "
                         "version of the contracts", fix)
    incentives = w3.eth.contract(address=to_checksum_address(chain.incentives),
                                 abi=list(load_artifact("Incentives").abi))
    wired = (incentives.functions.registry().call(), incentives.functions.token().call())
    if tuple(map(to_checksum_address, wired)) != (chain.registry, chain.token):
        return Check("contracts", FAIL, "the Incentives contract points at another Registry "
                     "or token than the network file names", fix)
    compiler = str(load_manifest().get("compiler", "?")).split("+")[0]
    return Check("contracts", OK, f"token, registry, incentives deployed; ABI matches "
                 f"({compiler})")


def _functions(contract: str) -> list[str]:
    from adapters.chain.artifacts import load_artifact

    return [f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
            for item in load_artifact(contract).abi if item.get("type") == "function"]


def _abi_type(param: dict[str, object]) -> str:
    kind = str(param["type"])
    if not kind.startswith("tuple"):
        return kind
    components = param.get("components") or []
    inner = ",".join(_abi_type(c) for c in components)  # type: ignore[attr-defined]
    return f"({inner}){kind[len('tuple'):]}"


def _selector(signature: str) -> bytes:
    """The 4-byte selector as the dispatcher pushes it (leading zero bytes dropped)."""
    from eth_utils.crypto import keccak

    return keccak(text=signature)[:4].lstrip(b"\x00")


def check_funds(balance: int, gas_wei: int, standing: Standing, min_stake: int,
                bundle: JoinBundle) -> Check:
    from seedswarm.commands.chain_context import faucet_hint, fmt_units

    need = gas_wei if standing.registered else min_stake + gas_wei
    purpose = "gas" if standing.registered else f"the {fmt_units(min_stake, 'ETH')} stake + gas"
    detail = f"{standing.account} holds {fmt_units(balance, 'ETH')}"
    if balance >= need:
        return Check("funds", OK, f"{detail}, enough for {purpose}")
    return Check("funds", FAIL, f"{detail}, needs {fmt_units(need, 'ETH')} for {purpose}",
                 faucet_hint(bundle))


def check_registration(standing: Standing, node_key: bytes | None) -> Check:
    from seedswarm.commands.chain_context import fmt_duration, fmt_units

    if not standing.registered:
        return Check("registry", FAIL, f"{standing.account} is not registered",
                     "register with `seedswarm join --network network.toml --keys DIR`")
    if node_key is not None and bytes(standing.node_key) != node_key:
        return Check("registry", FAIL, "the chain binds another node key to this account than "
                     "the keystore's", "run the node with the keys it registered with")
    slot = f", slot {standing.slot}" if standing.slot is not None else ""
    detail = f"{standing.role.name.lower()}, stake {fmt_units(standing.stake, 'ETH')}{slot}"
    if not standing.active:
        return Check("registry", WARN, f"{detail}; counts from the next epoch, in "
                     f"{fmt_duration(standing.wait_s)}", "wait; nothing to do")
    return Check("registry", OK, f"{detail}, active")


def check_peers(bundle: JoinBundle, timeout_s: float) -> Check:
    peers = bundle.peers
    if peers.transport == "mqtt":
        host, port = peers.broker_host_port
        error = _tcp(host, port, timeout_s)
        if error:
            return Check("peers", FAIL, f"MQTT broker {host}:{port} unreachable ({error})",
                         "check the broker runs and that no firewall blocks the port")
        return Check("peers", OK, f"MQTT broker {host}:{port} reachable")
    if not peers.bootstrap:
        return Check("peers", WARN, "no bootstrap peers in the network file",
                     "others must dial this node; ask the operator for a bootstrap address")
    failed = []
    for addr in peers.bootstrap:
        match = _HOST_PORT.match(addr)
        error = _tcp(match.group(1), int(match.group(2)), timeout_s) if match else "bad address"
        if error:
            failed.append(f"{addr} ({error})")
    reached = len(peers.bootstrap) - len(failed)
    detail = f"{reached}/{len(peers.bootstrap)} bootstrap peers reachable"
    if reached == 0:
        return Check("peers", FAIL, f"{detail}: {failed[0]}",
                     "check your connection and firewall, or ask the operator for live peers")
    if failed:
        return Check("peers", WARN, f"{detail}; not {', '.join(failed)}")
    return Check("peers", OK, detail)


def _tcp(host: str, port: int, timeout_s: float) -> str:
    """"" when a TCP connection to host:port opens within the timeout, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except TimeoutError:
        return f"no answer in {timeout_s:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_port(host: str, port: int) -> Check:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return Check("port", FAIL, f"cannot listen on {host}:{port} ({exc.strerror})",
                         "stop what uses the port, or pick another --listen-port")
    return Check("port", OK, f"{host}:{port} is free")
