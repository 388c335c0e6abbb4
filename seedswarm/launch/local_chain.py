"""The chain an operator starts for a network: in process, anvil, or one already running.

`embedded` runs eth-tester in this process and serves it over JSON-RPC
(adapters.chain.embedded_rpc): nothing to install, fine for short runs. `anvil` starts the npm
anvil binary (adapters.chain.devnode): faster, and the realistic choice for long runs. Any other
value is the JSON-RPC URL of a chain that is already running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from web3 import Web3

from adapters.chain.backends import chain_time, connect

_log = logging.getLogger("seedswarm.launch.local_chain")


@dataclass
class ChainHandle:
    """A running chain: the URL nodes use, the devnet's own Web3, and how to stop it."""

    kind: str
    url: str
    w3: Web3
    stop: Callable[[], None]


def start_chain(kind: str, host: str = "127.0.0.1") -> ChainHandle:
    """Start (or attach to) a chain: `embedded`, `anvil` (both listening on `host`) or the
    JSON-RPC URL of a dev chain."""
    if kind == "embedded":
        from adapters.chain.embedded_rpc import EmbeddedRpcServer

        w3 = connect("embedded")
        server = EmbeddedRpcServer(w3, host=host).start()
        return ChainHandle(kind, server.url, w3, server.stop)
    if kind == "anvil":
        from adapters.chain.devnode import AnvilNode

        node = AnvilNode(host=host).start()
        ticker = BlockTicker(connect(node.url)).start()
        return ChainHandle(kind, node.url, connect(node.url), _both(ticker.stop, node.stop))
    ticker = BlockTicker(connect(kind)).start()
    return ChainHandle("url", kind, connect(kind), ticker.stop)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def stop() -> None:
        first()
        second()

    return stop


class BlockTicker:
    """Mines an empty block each second while the wall clock is ahead of the chain.

    Dev chains that mine only on demand keep an idle chain's clock still, so calls and gas
    estimates for a transaction that waits for a time window would see the past forever; a
    real chain produces blocks continuously, and this makes a dev chain behave alike.
    """

    def __init__(self, w3: Web3, interval_s: float = 1.0) -> None:
        self._w3 = w3
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-ticker", daemon=True)

    def start(self) -> BlockTicker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                if time.time() >= chain_time(self._w3) + 1:
                    self._w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            except Exception as exc:  # a chain without evm_mine: stop trying
                _log.info("block ticker stopped: %r", exc)
                return
