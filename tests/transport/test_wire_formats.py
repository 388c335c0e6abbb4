"""Request/response frames, MQTT envelopes and name validation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.transport.framing import (
    FrameTooLarge,
    ResponseStatus,
    encode_request,
    encode_response,
    read_request,
    read_response,
)
from adapters.transport.mqtt_wire import (
    MIN_FRAME_BYTES,
    Auth,
    Envelope,
    MalformedEnvelope,
    PublishEnvelope,
    RequestEnvelope,
    ResponseEnvelope,
    decode,
    seal,
    signed_bytes,
)
from adapters.transport.names import check_name, check_network_id, check_segment
from protocol.identity import NodeKey

ascii_names = st.text(alphabet="abcXYZ0189._-", min_size=1, max_size=40)


def reader_of(raw: bytes):  # type: ignore[no-untyped-def]
    offset = 0

    async def read_exactly(count: int) -> bytes:
        nonlocal offset
        if offset + count > len(raw):
            raise EOFError
        chunk = raw[offset : offset + count]
        offset += count
        return chunk

    return read_exactly


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=2048), status=st.sampled_from(list(ResponseStatus)))
def test_frames_round_trip(payload: bytes, status: ResponseStatus) -> None:
    assert asyncio.run(read_request(reader_of(encode_request(payload)), 4096)) == payload
    parsed = asyncio.run(read_response(reader_of(encode_response(status, payload)), 4096))
    assert parsed == (status, payload)


def test_frame_above_limit_is_refused_before_its_body_is_read() -> None:
    header_only = encode_request(b"x" * 100)[:4]
    with pytest.raises(FrameTooLarge) as refused:
        asyncio.run(read_request(reader_of(header_only), 99))
    assert refused.value.size == 100


def test_truncated_frame_is_an_error() -> None:
    with pytest.raises(EOFError):
        asyncio.run(read_request(reader_of(encode_request(b"abcdef")[:-1]), 100))


WIRE_KEY = NodeKey.from_bytes(bytes(range(32)))


@settings(max_examples=60, deadline=None)
@given(
    request_id=st.integers(0, 2**64 - 1),
    seq=st.integers(0, 2**64 - 1),
    sender=st.one_of(st.just(""), ascii_names),
    protocol=ascii_names,
    topic=ascii_names,
    data=st.binary(max_size=512),
    status=st.sampled_from(list(ResponseStatus)),
)
def test_envelopes_round_trip_with_a_signature_over_network_topic_and_data(
    request_id: int,
    seq: int,
    sender: str,
    protocol: str,
    topic: str,
    data: bytes,
    status: ResponseStatus,
) -> None:
    auth = Auth(WIRE_KEY.public.raw, seq, sender)
    envelopes: list[Envelope] = [
        PublishEnvelope(auth, data),
        RequestEnvelope(auth, request_id, protocol, data),
        ResponseEnvelope(auth, request_id, status, data),
    ]
    for envelope in envelopes:
        parsed = decode(seal(envelope, WIRE_KEY, network_id="net", topic=topic))
        assert parsed.auth.signature != b""
        assert parsed == type(envelope)(**{**vars(envelope), "auth": parsed.auth})
        assert parsed.auth == Auth(WIRE_KEY.public.raw, seq, sender, parsed.auth.signature)
        key, signature = WIRE_KEY.public, parsed.auth.signature
        assert key.verify(signature, signed_bytes(parsed, network_id="net", topic=topic))
        assert not key.verify(signature, signed_bytes(parsed, network_id="net2", topic=topic))
        assert not key.verify(signature, signed_bytes(parsed, network_id="net", topic=topic + "x"))
        tampered = type(parsed)(**{**vars(parsed), "data": data + b"!"})
        assert not key.verify(signature, signed_bytes(tampered, network_id="net", topic=topic))


def _frame(kind: int, tail: bytes, version: int = 2) -> bytes:
    return b"SW" + bytes([version, kind]) + bytes(64) + bytes(32) + bytes(8) + tail


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"SW",
        _frame(1, b"\0")[:-1],  # one byte short of the smallest frame
        b"XX" + _frame(1, b"\0")[2:],
        _frame(1, b"\0", version=1),  # version 1: unsigned, refused
        _frame(1, b"\0", version=3),
        _frame(9, b"\0"),
        _frame(1, b"\x05ab"),  # truncated sender id
        _frame(3, b"\0" + bytes(8) + b"\x07"),  # unknown status
        _frame(2, b"\0" + bytes(8) + b"\x02\xff\xfe\x00"),  # non-ASCII protocol
    ],
)
def test_malformed_envelopes_are_rejected(raw: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        decode(raw)


@given(raw=st.binary(max_size=64), prefix=st.sampled_from([b"", b"SW\x02\x01", b"SW\x02\x03"]))
def test_decoder_never_fails_other_than_malformed(raw: bytes, prefix: bytes) -> None:
    with contextlib.suppress(MalformedEnvelope):
        decode(prefix + raw)


def test_smallest_frame_constant_matches_the_encoder() -> None:
    auth = Auth(WIRE_KEY.public.raw, 1, "")
    frame = seal(PublishEnvelope(auth, b""), WIRE_KEY, network_id="n", topic="t")
    assert len(frame) == MIN_FRAME_BYTES


@pytest.mark.parametrize("name", ["contributions", "round/7/certs", "a.b-c_d", "x" * 128])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "/lead", "trail/", "a//b", "wild/+", "all/#", "sp ace", "-dash", "x" * 129, "é"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_segments_and_network_ids_have_no_slash() -> None:
    assert check_network_id("seedswarm-test.1") == "seedswarm-test.1"
    assert check_segment("12D3KooWabc", "peer id") == "12D3KooWabc"
    for bad in ("a/b", "", "+", "#"):
        with pytest.raises(ValueError):
            check_network_id(bad)
