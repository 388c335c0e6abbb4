"""Dev chains only: an HTTP faucet that funds a joiner's new account, once per address.

`seedswarm devnet --keep-alive` and `seedswarm network create` on a dev chain serve one and
name it in the network file; `seedswarm join --faucet` asks it for enough of the chain's coin to
stake and pay for gas. The faucet sends from the dev chain's first unlocked account through the
chain's own RPC endpoint, so it needs no key and serializes with every other client.

POST /fund {"address": "0x…"} → 200 {"address": …, "amount": wei, "tx": …}, 409 if that address
was funded already, 400 for anything that is not an address.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from adapters.chain.chain_errors import ChainError
from adapters.json_post_server import JsonPostServer
from protocol.domain_types import EvmAddress, Wei


class Faucet:
    """Funds each address once with `amount` wei on the chain at `rpc_url`."""

    def __init__(self, rpc_url: str, amount: Wei, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.rpc_url = rpc_url
        self.amount = amount
        self._funded: set[str] = set()
        self._lock = threading.Lock()
        self._http = JsonPostServer(
            "/fund", lambda body: self.fund(str(body.get("address", ""))), name="faucet",
            bad_request='expected JSON {"address": "0x…"}', failure="the chain refused",
            host=host, port=port)

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> Faucet:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def fund(self, address: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for a request to fund `address`."""
        if not is_address(address):
            return 400, {"error": f"not an address: {address!r}"}
        account = to_checksum_address(address)
        with self._lock:
            if account in self._funded:
                return 409, {"error": f"{account} was funded already"}
            from adapters.chain.backends import connect

            w3 = connect(self.rpc_url)
            tx = w3.eth.send_transaction(
                {"from": w3.eth.accounts[0], "to": account, "value": self.amount}  # type: ignore[typeddict-item]
            )
            w3.eth.wait_for_transaction_receipt(tx)
            self._funded.add(account)
        return 200, {"address": account, "amount": str(self.amount), "tx": tx.hex()}


def request_funds(faucet_url: str, address: EvmAddress, *, timeout_s: float) -> Wei:
    """Ask the faucet at `faucet_url` to fund `address`; the amount sent (0 if it had already
    funded this address). ChainError with the cause and the fix otherwise."""
    request = urllib.request.Request(
        faucet_url.rstrip("/") + "/fund", data=json.dumps({"address": address}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Wei(int(json.loads(response.read())["amount"]))
    except urllib.error.HTTPError as exc:
        if exc.code == 409:
            return Wei(0)
        detail = exc.read().decode(errors="replace")[:200]
        raise ChainError(f"the faucet at {faucet_url} refused: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ChainError(f"cannot reach the faucet at {faucet_url} ({exc}): is the network's "
                         "operator still running it? Fund the account another way and run "
                         "without --faucet") from exc
