"""Fuzzing the decoder and envelope opener: arbitrary input may only raise MessageRejected."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from protocol.encoding import MAX_MESSAGE_BYTES, decode, encode
from protocol.errors import MessageRejected
from protocol.messages import Message, ScoreReceipt
from protocol.signing import open_envelope, seal
from tests.protocol.message_strategies import (
    KEYS,
    NETWORK,
    key_for,
    sample_contribution,
    sample_endorsement,
)

ITERATIONS = 10_000


def _corpus() -> list[Message]:
    key = KEYS[2].public.raw
    receipt = ScoreReceipt(NETWORK, 5, key, 1, KEYS[3].public.raw, True, None, -0.5, 0.25,
                           1e-3, 25.0, 8.3, 12_345, "slow but honest")  # fmt: skip
    return [sample_contribution(), sample_endorsement(), receipt]


def _random_bytes(rng: random.Random) -> bytes:
    size = rng.choice([rng.randrange(0, 80), rng.randrange(0, 600), rng.randrange(0, 5000)])
    prefix = rng.choice([b"", b"\x01", b"\x01\x01", b"\x01\x01\x01", bytes([1, rng.randrange(5)])])
    return prefix + rng.randbytes(size)


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(data) + 1)
        operation = rng.randrange(6)
        if operation == 0 and position < len(data):
            data[position] ^= 1 << rng.randrange(8)
        elif operation == 1 and position < len(data):
            data[position] = rng.randrange(256)
        elif operation == 2:
            data[position:position] = rng.randbytes(rng.randrange(1, 8))
        elif operation == 3:
            del data[position : position + rng.randrange(1, 8)]
        elif operation == 4:
            data = data[:position]
        else:
            data[position : position + 2] = rng.choice([b"\xff\xff", b"\x00\x00", b"\x10\x00"])
    return bytes(data)


def _only_rejections(target: Callable[[bytes], object], inputs: list[bytes]) -> int:
    """Feed every input; return how many were accepted (anything but MessageRejected fails)."""
    accepted = 0
    for raw in inputs:
        try:
            target(raw)
        except MessageRejected:
            continue
        accepted += 1
    return accepted


@pytest.mark.slow
def test_random_bytes_only_raise_message_rejected() -> None:
    rng = random.Random(20240601)
    inputs = [_random_bytes(rng) for _ in range(ITERATIONS)]
    inputs.append(b"\x01" * (MAX_MESSAGE_BYTES + 1))
    assert _only_rejections(lambda raw: open_envelope(raw, network_id=NETWORK), inputs) == 0
    accepted_by_decode = _only_rejections(decode, inputs)
    assert accepted_by_decode <= ITERATIONS // 100  # random bytes almost never form a message


@pytest.mark.slow
def test_mutated_envelopes_are_all_rejected() -> None:
    rng = random.Random(7)
    originals = [seal(msg, key_for(msg.author)) for msg in _corpus()]
    mutated = [_mutate(rng.choice(originals), rng) for _ in range(ITERATIONS)]
    mutated = [raw for raw in mutated if raw not in originals]
    assert len(mutated) > 0.95 * ITERATIONS
    assert _only_rejections(lambda raw: open_envelope(raw, network_id=NETWORK), mutated) == 0


@pytest.mark.slow
def test_mutated_encodings_decode_canonically_or_are_rejected() -> None:
    rng = random.Random(11)
    originals = [encode(msg) for msg in _corpus()]
    for _ in range(ITERATIONS):
        raw = _mutate(rng.choice(originals), rng)
        try:
            msg = decode(raw)
        except MessageRejected:
            continue
        assert encode(msg) == raw  # whatever decodes is in canonical form


def test_small_fuzz_sample_runs_fast() -> None:
    rng = random.Random(3)
    originals = [seal(msg, key_for(msg.author)) for msg in _corpus()]
    inputs = [_mutate(rng.choice(originals), rng) for _ in range(300)]
    inputs += [_random_bytes(rng) for _ in range(300)]
    inputs = [raw for raw in inputs if raw not in originals]
    assert _only_rejections(lambda raw: open_envelope(raw, network_id=NETWORK), inputs) == 0
