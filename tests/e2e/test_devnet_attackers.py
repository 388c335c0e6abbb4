"""A devnet under attack: two honest miners beside a live copycat, a noise miner and a
free-rider, every node its own OS process over MQTT, settled on the embedded chain.

The honest replicas agree, the honest miners are paid and no attacker earns anything
on-chain. The copycat must really have copied: it re-signed what an honest miner published in
the same round (where the validator certified that miner, the very same envelope), the
validator's scoring pipeline received its copies, and no certificate ever includes one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.storage.logstore import RoundLogStore
from protocol.identity import peer_id_from_public_bytes
from protocol.messages import Contribution
from protocol.roundlog import decode_frames
from protocol.signing import Signed, open_envelope
from seedswarm.devnet.copycat import COPYCAT_STATUS
from seedswarm.devnet.local_network import run_devnet
from seedswarm.devnet.spec import DevnetSpec

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

ROUNDS = 4
ATTACKERS = (("copycat", 1), ("noise", 1), ("free-rider", 1))
HONEST = ("validator-0", "miner-0", "miner-1")


def _certified(workdir: Path, network_id: str, round_index: int) -> list[Signed[Contribution]]:
    """The contributions the validator certified in `round_index`, from its on-disk log."""
    raw = RoundLogStore(workdir / "state" / "validator-0" / "log").get(round_index)
    assert raw is not None, f"round {round_index} is not in the validator's log"
    return [open_envelope(frame, network_id=network_id, expect=Contribution)
            for frame in decode_frames(raw)[1:]]


def test_honest_miners_are_paid_and_attackers_earn_nothing(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=2, validators=1, rounds=ROUNDS, transport="mqtt", chain="embedded",
                      attackers=ATTACKERS, workdir=tmp_path, startup_s=12)
    result: dict[str, Any] = asyncio.run(run_devnet(spec))

    assert set(result["final_rounds"].values()) == {ROUNDS}, result["final_rounds"]
    hashes = result["final_model_hashes"]
    assert len({hashes[name] for name in HONEST}) == 1, hashes

    rewards = result["rewards"]
    attackers = result["attackers"]
    assert sorted(attackers.values()) == ["copycat", "free-rider", "noise"]
    assert all(rewards[name] == 0 for name in attackers), rewards
    assert all(rewards[name] > 0 for name in ("miner-0", "miner-1")), rewards

    # the copycat copied: it re-signed what honest miners published in the same round
    status = json.loads((tmp_path / "state" / "attacker-copycat-0" / COPYCAT_STATUS).read_text())
    assert status["copied"] >= ROUNDS - 1, status
    me = status["key"]
    honest_peers = {result["nodes"][name]["peer_id"] for name in ("miner-0", "miner-1")}
    copied_rounds = sorted(c["round"] for c in status["copies"])
    victims = [peer_id_from_public_bytes(bytes.fromhex(c["victim"])) for c in status["copies"]]
    # the freshest message is usually an honest one (they compute; attackers publish at once),
    # but a round where honest work ran late leaves only an attacker's to copy
    assert sum(v in honest_peers for v in victims) >= ROUNDS // 2, status
    for copy in status["copies"]:
        assert copy["victim"] != me
        certified = _certified(tmp_path, result["network_id"], copy["round"])
        by_sender = {c.message.sender.hex(): c for c in certified}
        assert me not in by_sender, f"round {copy['round']} certified the copycat"
        if copy["victim"] in by_sender:  # the validator certified exactly what was copied
            assert by_sender[copy["victim"]].digest.hex() == copy["victim_digest"]

    # ... and the validator's scoring pipeline received its copies (unpaid: rewards above)
    books = json.loads((tmp_path / "state" / "validator-0" / "scoring-state.json").read_text())
    first_seen, last_seen = books["books"][me]["presence"]
    assert first_seen <= copied_rounds[0] and last_seen >= copied_rounds[-1], books["books"][me]
