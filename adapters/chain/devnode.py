"""Starting a local anvil node (from the npm package @foundry-rs/anvil) on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from adapters.chain.chain_errors import ChainError
from adapters.loopback_ports import free_loopback_port

ANVIL_ENV = "SEEDSWARM_ANVIL"
_NPM_BINARY = Path("node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil")


def _contracts_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path.cwd(), *here.parents]
    return [root / "contracts" for root in roots]


def find_anvil() -> Path:
    """The anvil binary: $SEEDSWARM_ANVIL, then PATH, then contracts/node_modules of a checkout."""
    explicit = os.environ.get(ANVIL_ENV)
    if explicit:
        return Path(explicit)
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    for contracts in _contracts_dirs():
        candidate = contracts / _NPM_BINARY
        if candidate.is_file():
            return candidate
    raise ChainError(
        "anvil not found: set SEEDSWARM_ANVIL, put anvil on PATH, or run `npm ci` in contracts/"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (adapters.loopback_ports)."""
    return free_loopback_port()


def _rpc_ready(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as response:
            return b"result" in response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class AnvilNode:
    """A running anvil process; use as a context manager.

    `gas_limit` defaults to 30M so that "fits in a block" claims are tested against a real
    block limit; dev accounts get `balance_eth` each, like eth-tester's.
    """

    def __init__(
        self,
        binary: Path | None = None,
        port: int | None = None,
        gas_limit: int = 30_000_000,
        balance_eth: int = 1_000_000,
        startup_timeout: float = 20.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._binary = binary or find_anvil()
        self._host = host
        self._port = port or free_port()
        self._gas_limit = gas_limit
        self._balance_eth = balance_eth
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """JSON-RPC endpoint."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> AnvilNode:
        """Launches anvil and waits until it answers JSON-RPC."""
        command = [
            str(self._binary),
            "--host", self._host,
            "--port", str(self._port),
            "--gas-limit", str(self._gas_limit),
            "--balance", str(self._balance_eth),
            "--silent",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise ChainError(f"anvil exited with {self._process.returncode}: {err.strip()}")
            if _rpc_ready(self.url):
                return self
            time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.url} within {self._startup_timeout}s")

    def stop(self) -> None:
        """Terminates anvil (kills it if it does not exit within 5 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
