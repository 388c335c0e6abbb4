"""protocol.domain_types: mypy keeps keys, hashes, digests, beacons, amounts and ids apart.

The types are NewTypes, erased at run time, so the guarantee is the type checker's: these
tests run mypy on small programs against the real protocol modules and check that every
mix-up is reported (on exactly the lines marked ``# E``) and that correct use is clean.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.domain_types import Beacon, Digest, EvmAddress, ModelHash, PeerId, PublicKey, Wei

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[2]

_HEADER = """\
from protocol.domain_types import Beacon, Digest, EvmAddress, ModelHash, PeerId, PublicKey, Wei
from protocol.identity import NodeKey
from protocol.leader import select_leader
from protocol.membership import Membership
from protocol.messages import CertEntry, CertificateEndorsement
from protocol.randomness import contribution_seeds, round_beacon
from protocol.signing import message_digest
"""

MIXED_UP = _HEADER + """
def mixed_up(
    h: ModelHash, k: PublicKey, d: Digest, b: Beacon, w: Wei, a: EvmAddress, p: PeerId,
    raw: bytes, vote: CertificateEndorsement,
) -> None:
    round_beacon("net", h)  # E: a model hash where the round index goes
    contribution_seeds("net", b, h, 0, 4)  # E: a model hash where the miner's key goes
    contribution_seeds("net", h, k, 0, 4)  # E: a model hash where the beacon goes
    select_leader(b, [(h, w)])  # E: a model hash in the stake table
    select_leader(b, [(k, 5)])  # E: a plain int where a stake in wei goes
    select_leader(h, [(k, w)])  # E: a model hash where the beacon goes
    CertEntry(sender=k, contribution_digest=h, weight_ppb=1)  # E: a hash where a digest goes
    CertEntry(sender=d, contribution_digest=d, weight_ppb=1)  # E: a digest where a key goes
    Membership.of([h], [(k, w)])  # E: a model hash as a miner's key
    Membership.of([k], [(k, 1)])  # E: a plain int stake
    address: EvmAddress = p  # E: a peer id is no EVM address
    peer: PeerId = a  # E: nor the other way round
    stake: Wei = 10**18  # E: an int becomes an amount only by saying so
    key: PublicKey = message_digest(vote)  # E: a digest is no key
"""

USED_RIGHT = _HEADER + """
def used_right(h: ModelHash, d: Digest, w: Wei) -> None:
    node = NodeKey.generate()
    k: PublicKey = node.public.raw
    b: Beacon = round_beacon("net", 0)
    seeds: list[int] = contribution_seeds("net", b, k, 0, 4)
    leader: PublicKey = select_leader(b, [(k, w)])
    CertEntry(sender=leader, contribution_digest=d, weight_ppb=1)
    vote = CertificateEndorsement("net", 0, k, 0, d, True, "")
    digest: Digest = message_digest(vote)
    table = Membership.of([k], [(k, Wei(10**18))])
    total: Wei = table.total_stake
    as_bytes: bytes = k + h + digest  # every one of them is still bytes
    as_int: int = total + w  # and an amount still an int (arithmetic gives a plain int)
    peer: str = node.peer_id
    print(seeds, as_bytes, as_int, peer)
"""


def _mypy(source: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """mypy's error lines for `source`, checked against this checkout's protocol package."""
    monkeypatch.setenv("MYPYPATH", str(ROOT))  # this checkout, not an installed copy
    stdout, stderr, _ = api.run([
        "--config-file", "",  # the project's config names packages; only `source` here
        "--python-version", "3.11",
        "--follow-imports", "silent",
        "--ignore-missing-imports",
        "--strict-equality",
        "--cache-dir", str(cache),
        "--hide-error-context", "--no-error-summary", "--show-error-codes",
        "-c", source,
    ])
    assert not stderr, stderr
    return [line for line in stdout.splitlines() if ": error:" in line]


def _error_lines(errors: list[str]) -> set[int]:
    return {int(m.group(1)) for e in errors if (m := re.match(r"<string>:(\d+):", e))}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def test_mypy_rejects_every_mix_up(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = _mypy(MIXED_UP, cache, monkeypatch)
    marked = {i for i, line in enumerate(MIXED_UP.splitlines(), start=1) if "# E" in line}
    assert len(marked) == 14
    assert _error_lines(errors) == marked, "\n".join(errors)
    codes = {re.sub(r".*\[([a-z-]+)\]$", r"\1", e) for e in errors}
    assert codes == {"arg-type", "list-item", "assignment"}, "\n".join(errors)


def test_mypy_accepts_correct_use(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _mypy(USED_RIGHT, cache, monkeypatch) == []


def test_the_types_cost_nothing_at_run_time() -> None:
    raw = bytes(range(32))
    for new_type in (PublicKey, ModelHash, Digest, Beacon):
        assert new_type(raw) is raw
    assert Wei(10**18) == 10**18 and type(Wei(1)) is int
    for text_type in (EvmAddress, PeerId):
        assert type(text_type("x")) is str
