"""Request/response frames, MQTT envelopes and name validation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.transport.framing import (
    FrameTooLarge,
    ResponseStatus,
    encode_request,
    encode_response,
    read_request,
    read_response,
)
from protocol.transport.mqtt_wire import (
    Envelope,
    MalformedEnvelope,
    PublishEnvelope,
    RequestEnvelope,
    ResponseEnvelope,
    decode,
    encode,
)
from protocol.transport.names import check_name, check_network_id, check_segment

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


@settings(max_examples=60, deadline=None)
@given(
    session=st.integers(0, 2**64 - 1),
    seq=st.integers(0, 2**64 - 1),
    sender=ascii_names,
    protocol=ascii_names,
    data=st.binary(max_size=512),
    status=st.sampled_from(list(ResponseStatus)),
)
def test_envelopes_round_trip(
    session: int, seq: int, sender: str, protocol: str, data: bytes, status: ResponseStatus
) -> None:
    envelopes: list[Envelope] = [
        PublishEnvelope(session, seq, sender, data),
        RequestEnvelope(seq, sender, protocol, data),
        ResponseEnvelope(seq, status, data),
    ]
    for envelope in envelopes:
        assert decode(encode(envelope)) == envelope


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"SW",
        b"XX\x01\x01" + b"\0" * 20,
        b"SW\x02\x01" + b"\0" * 20,
        b"SW\x01\x09" + b"\0" * 20,
        b"SW\x01\x01" + b"\0" * 16 + b"\x05ab",
        b"SW\x01\x03" + b"\0" * 8 + b"\x07",
        b"SW\x01\x02" + b"\0" * 8 + b"\x02\xff\xfe\x00",
    ],
)
def test_malformed_envelopes_are_rejected(raw: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        decode(raw)


@given(raw=st.binary(max_size=64))
def test_decoder_never_fails_other_than_malformed(raw: bytes) -> None:
    with contextlib.suppress(MalformedEnvelope):
        decode(raw)


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
