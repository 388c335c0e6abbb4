"""`seedswarm receipts` over a real MQTT broker: a registered validator serves its receipts; the
command finds it in the Registry, verifies what it answers, and names who did not answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import EmbeddedBroker
from protocol.domain_types import PublicKey
from protocol.identity import NodeKey
from protocol.messages import ScoreReceipt
from seedswarm.launch.join_bundle import PeerInfo
from tests.chain.harness import ETH
from tests.cli.served_chain import Served, run_cli, serve
from validator.loss_delta import LossDelta
from validator.outcome import RoundOutcome
from validator.ratings import Rating, RatingStore
from validator.receipts import build_receipt
from validator.service.receipt_server import RECEIPT_PROTOCOL, ReceiptBook

pytestmark = [pytest.mark.chain, pytest.mark.network]

SCORED = {0: RoundOutcome(True, True, True, LossDelta(own=0.031, random=0.012, valid=True),
                          -0.02, 0.6),
          1: RoundOutcome(True, False, True, LossDelta(0.0, 0.0, valid=False), None, 0.6)}


class LiveValidator:
    """A broker and a validator's transport answering receipt requests, on their own loop."""

    def __init__(self, key: NodeKey, network_id: str) -> None:
        self.key, self.network_id = key, network_id
        self.broker = EmbeddedBroker()
        self._ready, self._loop = threading.Event(), asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._run(),), daemon=True)

    def scored(self, miner: PublicKey, round_index: int) -> ScoreReceipt | None:
        outcome = SCORED.get(round_index)
        if outcome is None:
            return None
        return build_receipt(network_id=self.network_id, round_index=round_index,
                             validator=self.key.public.raw, sequence=1, miner=miner,
                             outcome=outcome, rating=Rating(31.0, 4.5),
                             weight_ppb=250_000_000 if outcome.verified else 0)

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        async with self.broker:
            transport = MqttTransport(MqttConfig(port=self.broker.port), key=self.key,
                                      network_id=self.network_id)
            book = ReceiptBook(self.key, self.network_id, RatingStore(), self.scored)
            transport.serve(RECEIPT_PROTOCOL, book.handle)
            async with transport:
                self._ready.set()
                await self._stop.wait()

    def __enter__(self) -> LiveValidator:
        self._thread.start()
        assert self._ready.wait(30), "the broker or the validator did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, LiveValidator]]:
    key = NodeKey.generate()
    validator = LiveValidator(key, "cli-net")
    served = serve(tmp_path_factory.mktemp("receipts"), ticking=False,
                   peers=PeerInfo("mqtt", broker=validator.broker.url))
    served.net.join(3 * ETH).registry.register_validator(key.public.raw, ETH)
    with validator:
        yield served, validator
    served.server.stop()


def test_receipts_are_fetched_verified_and_explained(
    live: tuple[Served, LiveValidator], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    served, validator = live
    args = served.args("--keys", str(served.keys_dir), "--round", "0", "--round", "1",
                       "--round", "2", "--timeout", "1", "--json")
    result = run_cli(capsys, monkeypatch, "receipts", *args, password=None)
    report = result.json()
    me = served.keys.node_key.public.raw.hex()
    assert report["miner"] == me and report["rounds"] == [0, 1, 2]
    got = {r["round"]: r for r in report["receipts"]}
    assert set(got) == {0, 1}
    assert all(r["validator"] == validator.key.public.raw.hex() for r in got.values())
    assert (got[0]["loss_delta_own"], got[0]["loss_delta_random"]) == (0.031, 0.012)
    assert (got[0]["weight"], got[0]["reason"], got[0]["verified"]) == (0.25, "scored", True)
    assert (got[0]["rating_mu"], got[0]["rating_sigma"]) == (31.0, 4.5)
    assert got[1]["weight"] == 0 and "verification" in got[1]["reason"]
    missing = {(m["validator"], m["round"]): m["error"] for m in report["missing"]}
    assert "no receipt" in missing[validator.key.public.raw.hex(), 2]
    others = {k for k, _ in missing} - {validator.key.public.raw.hex()}
    assert len(others) == 2  # the harness's validators have no live node behind their keys
    assert all(e.startswith("unreachable") for (k, _), e in missing.items() if k in others)

    text = run_cli(capsys, monkeypatch, "receipts", *args[:-1], password=None)
    assert text.code == 0 and "signatures verified" in text.out and "scored" in text.out
