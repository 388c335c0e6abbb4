"""Signed envelopes the MQTT transport wraps around payloads.

MQTT carries no authenticated sender, no message id and no request/response pairing (in
3.1.1), and anyone connected to the broker may publish anywhere. So each payload travels in a
small binary envelope signed by its sender's node key (integers big-endian):

    frame    = header | signature (64) | auth | fields | data
    header   = b"SW" | version u8 (= 2) | kind u8
    auth     = sender public key (32) | seq u64 | declared sender id
    PUBLISH  fields = (none)
    REQUEST  fields = request id u64 | protocol
    RESPONSE fields = request id u64 | status u8

Text fields (declared sender id, protocol) are u8-length-prefixed ASCII (text16: u16 prefix);
the declared id may be empty. The Ed25519 signature covers

    text16("seedswarm/mqtt-frame/2") | text16(network id) | text16(MQTT topic)
    | header | auth | fields | SHA-256(data)

so a frame verifies only on the network and MQTT topic (a topic, or one peer's request inbox)
it was made for, and only with the payload it was made with. `seq` is drawn from a per-sender
counter that starts at the wall clock in microseconds, so it keeps growing across restarts;
(sender key, seq) names a frame uniquely, which is how `FrameVerifier` tells a QoS 1
redelivery (a duplicate, dropped quietly) from a replay.

Receivers check the size before parsing, parse, then `FrameVerifier.verify` before anything
else: the strangers' budget (unregistered keys only), signature, declared id against the key's
peer id, freshness, replay window. Version 1
frames (unsigned, self-declared sender) are refused as malformed.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.transport.framing import ResponseStatus
from adapters.transport.stats import DropReason
from protocol.identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, NodeKey, NodePublicKey

VERSION = 2
FRAME_DOMAIN = "seedswarm/mqtt-frame/2"
_MAGIC = b"SW"
_HEADER = struct.Struct(">2sBB")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_U8 = struct.Struct(">B")
MIN_FRAME_BYTES = _HEADER.size + SIGNATURE_BYTES + PUBLIC_KEY_BYTES + _U64.size + 1
"""The smallest frame the decoder can accept: anything shorter is refused before parsing."""


class MalformedEnvelope(ValueError):
    """Bytes that are not a valid envelope of this version."""


class Kind(enum.IntEnum):
    PUBLISH = 1
    REQUEST = 2
    RESPONSE = 3


@dataclass(frozen=True)
class Auth:
    """Who sent a frame and under which sequence number, as the frame claims it."""

    public_key: bytes
    seq: int
    sender: str
    """The declared peer id ('' if undeclared); receivers derive the real one from the key."""
    signature: bytes = b""


@dataclass(frozen=True)
class PublishEnvelope:
    auth: Auth
    data: bytes


@dataclass(frozen=True)
class RequestEnvelope:
    auth: Auth
    request_id: int
    protocol: str
    data: bytes


@dataclass(frozen=True)
class ResponseEnvelope:
    auth: Auth
    request_id: int
    status: ResponseStatus
    data: bytes


Envelope = PublishEnvelope | RequestEnvelope | ResponseEnvelope


def seal(
    envelope: Envelope, key: NodeKey, *, network_id: str, topic: str
) -> bytes:
    """Sign `envelope` (its auth.signature is ignored) for `topic` and serialize it."""
    header, body = _header(envelope), _body(envelope)
    signature = key.sign(_signed_bytes(network_id, topic, header, body, envelope.data))
    return b"".join([header, signature, body, envelope.data])


def signed_bytes(envelope: Envelope, *, network_id: str, topic: str) -> bytes:
    """What the envelope's signature must cover when it arrives on `topic`."""
    return _signed_bytes(network_id, topic, _header(envelope), _body(envelope), envelope.data)


def decode(raw: bytes) -> Envelope:
    """Parse one envelope; MalformedEnvelope for anything else. Does not verify it."""
    if len(raw) < MIN_FRAME_BYTES:
        raise MalformedEnvelope(f"a frame has at least {MIN_FRAME_BYTES} bytes, got {len(raw)}")
    reader = _Reader(raw)
    magic, version, kind = reader.take(len(_MAGIC)), reader.u8(), reader.u8()
    if magic != _MAGIC or version != VERSION:
        raise MalformedEnvelope("unknown magic or version")
    signature = reader.take(SIGNATURE_BYTES)
    public_key, seq = reader.take(PUBLIC_KEY_BYTES), reader.u64()
    auth = Auth(public_key, seq, reader.short_text(), signature)
    if kind == Kind.PUBLISH:
        return PublishEnvelope(auth, reader.rest())
    if kind == Kind.REQUEST:
        request_id = reader.u64()
        return RequestEnvelope(auth, request_id, reader.short_text(), reader.rest())
    if kind == Kind.RESPONSE:
        request_id = reader.u64()
        raw_status = reader.u8()
        try:
            status = ResponseStatus(raw_status)
        except ValueError:
            raise MalformedEnvelope(f"unknown response status {raw_status}") from None
        return ResponseEnvelope(auth, request_id, status, reader.rest())
    raise MalformedEnvelope(f"unknown envelope kind {kind}")


class SequenceCounter:
    """A sender's frame sequence: strictly increasing, and ahead of any earlier run's.

    It starts at the wall clock in microseconds and takes max(last + 1, clock) each time, so
    a restarted node continues above what it sent before (unless its clock went backwards).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(self._clock() * 1_000_000))
        return self._last


class Refused(Exception):
    """A frame failed verification; `reason` is the counted drop reason."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


MemberCheck = Callable[[bytes], bool]
"""Whether a raw Ed25519 sender key belongs to a registered member of the network."""


@dataclass(frozen=True)
class VerifierLimits:
    """How far a frame's clock-based sequence may stray, and how much state a receiver keeps.

    Members (the senders the membership check recognizes, and peers answering this node's own
    requests) and strangers (every other key: keys cost nothing) are kept apart, so strangers
    can never take a member's place: members have their own table; strangers share a small
    table and one token bucket of frames, checked before their signature is.
    """

    freshness_s: float = 300.0
    """Frames whose sequence is further than this from the receiver's clock are stale."""
    history: int = 256
    """Sequences remembered per sender: the reordering / redelivery window."""
    max_senders: int = 4096
    """Members tracked at once (only members active within `freshness_s` count); beyond it
    (more registered members active than this) a new member is refused, never evicted."""
    max_keys: int = 4096
    """Parsed public keys cached."""
    max_strangers: int = 256
    """Strangers tracked at once; beyond it the least recently active one is forgotten."""
    stranger_rate_per_s: float = 20.0
    """Frames per second that all strangers together may have examined (joiners asking for
    the genesis model or the log need a few per round)."""
    stranger_burst: float = 100.0
    """How many stranger frames may arrive at once after a quiet spell."""

    def __post_init__(self) -> None:
        sizes = (self.history, self.max_senders, self.max_keys, self.max_strangers)
        if self.freshness_s <= 0 or min(sizes) < 1:
            raise ValueError("verifier limits must be positive")
        if self.stranger_rate_per_s <= 0 or self.stranger_burst < 1:
            raise ValueError("the strangers' budget must be positive")


@dataclass
class _Window:
    """One sender's accepted sequences: everything at or below `floor` is refused."""

    floor: int = -1
    highest: int = -1
    seen: set[int] = field(default_factory=set)
    oldest: list[int] = field(default_factory=list)  # a heap of `seen`


class FrameVerifier:
    """Authenticates inbound frames of one network and filters replays, in bounded memory.

    `verify` checks, in order: the strangers' budget (only for a key that is no member), the
    signature (for the topic the frame arrived on), the declared sender id against the key's
    peer id, freshness of the sequence, then the sender's window: a sequence already seen is a
    DUPLICATE (QoS 1 redelivers), one at or below the window's floor is REPLAYED, anything
    else above the floor is accepted even out of order (the broker does not order a sender's
    frames across topics). A sender's state may be forgotten once its newest sequence is older
    than the freshness window: its old frames are stale by then.

    Members and strangers (see VerifierLimits) live in separate tables. The members' table
    refuses a new member when full rather than evict a live one (that would let its recent
    frames be replayed); only registered keys enter it, so strangers cannot fill it. The
    strangers' table forgets its least recently active entry instead: a replayed stranger
    frame reaches nobody who trusts it (nodes check membership themselves), whereas refusing
    would let a flood lock every joiner out. Without a membership check (`members=None`: a
    chainless test network) every sender counts as a member, as before strangers existed.
    """

    def __init__(
        self,
        network_id: str,
        limits: VerifierLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        members: MemberCheck | None = None,
    ) -> None:
        self._network_id = network_id
        self._limits = limits or VerifierLimits()
        self._clock = clock
        self._members = members
        self._keys: OrderedDict[bytes, tuple[NodePublicKey, str]] = OrderedDict()
        self._windows: OrderedDict[bytes, _Window] = OrderedDict()
        self._strangers: OrderedDict[bytes, _Window] = OrderedDict()
        self._tokens = self._limits.stranger_burst
        self._refilled_at = clock()
        self.strangers_forgotten = 0
        """Strangers' windows dropped to make room for another stranger."""

    def recognize(self, members: MemberCheck | None) -> None:
        """Use `members` to tell members from strangers from now on (None: all are members).

        Windows tracked before as members' but whose keys `members` does not know move to
        the strangers' table (the oldest beyond its size are forgotten): a flood sent before a
        node learned its membership cannot hold the members' table afterwards.
        """
        self._members = members
        for key in [k for k in self._windows if not self.is_member(k)]:
            self._strangers[key] = self._windows.pop(key)
        while len(self._strangers) > self._limits.max_strangers:
            self._strangers.popitem(last=False)
            self.strangers_forgotten += 1

    @property
    def num_senders(self) -> int:
        """Members whose windows are tracked."""
        return len(self._windows)

    @property
    def num_strangers(self) -> int:
        """Strangers whose windows are tracked."""
        return len(self._strangers)

    def is_member(self, key: bytes) -> bool:
        """Whether frames signed by `key` go to the members' table."""
        return self._members is None or self._members(key)

    def verify(self, envelope: Envelope, topic: str, *, solicited: bool = False) -> str:
        """The sender's peer id, derived from its key; raises Refused otherwise.

        `solicited`: the frame answers a request this node made to the peer whose key it
        carries (its signature is still checked): treated as a member's, never budgeted.
        """
        auth = envelope.auth
        member = solicited or self.is_member(auth.public_key)
        if not member:
            self._spend_stranger_token()
        public, peer_id = self._key(auth.public_key)
        message = signed_bytes(envelope, network_id=self._network_id, topic=topic)
        if not public.verify(auth.signature, message):
            raise Refused(DropReason.BAD_SIGNATURE, f"frame on {topic} claiming {peer_id}")
        if auth.sender and auth.sender != peer_id:
            raise Refused(
                DropReason.SENDER_MISMATCH, f"key of {peer_id} declares {auth.sender!r}"
            )
        now_us = int(self._clock() * 1_000_000)
        fresh_us = int(self._limits.freshness_s * 1_000_000)
        if abs(auth.seq - now_us) > fresh_us:
            raise Refused(
                DropReason.STALE_FRAME, f"seq {auth.seq} from {peer_id}, clock at {now_us}"
            )
        self._admit(auth.public_key, auth.seq, peer_id, now_us - fresh_us, member=member)
        return peer_id

    def peer_id(self, key: bytes) -> str:
        """The peer id of a raw sender key; Refused (BAD_SIGNATURE) if it is no Ed25519 key."""
        return self._key(key)[1]

    def _spend_stranger_token(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        limits = self._limits
        self._tokens = min(limits.stranger_burst,
                           self._tokens + elapsed * limits.stranger_rate_per_s)
        self._refilled_at = now
        if self._tokens < 1.0:
            raise Refused(DropReason.STRANGER_BUDGET,
                          f"unregistered senders over {limits.stranger_rate_per_s:g} frames/s")
        self._tokens -= 1.0

    def _key(self, raw: bytes) -> tuple[NodePublicKey, str]:
        cached = self._keys.get(raw)
        if cached is not None:
            self._keys.move_to_end(raw)
            return cached
        try:
            public = NodePublicKey.from_bytes(raw)
        except ValueError:
            raise Refused(DropReason.BAD_SIGNATURE, "sender key is no Ed25519 key") from None
        cached = (public, public.peer_id)
        self._keys[raw] = cached
        if len(self._keys) > self._limits.max_keys:
            self._keys.popitem(last=False)
        return cached

    def _admit(
        self, key: bytes, seq: int, peer_id: str, expired_below: int, *, member: bool
    ) -> None:
        table, other = (self._windows, self._strangers) if member else (
            self._strangers, self._windows)
        window = table.get(key)
        if window is None:
            # a stranger that registered (or a member that left) keeps its window
            window = other.pop(key, None) or _Window()
            self._make_room(table, peer_id, expired_below, member=member)
            table[key] = window
        if seq in window.seen:
            raise Refused(DropReason.DUPLICATE, f"seq {seq} from {peer_id} again")
        if seq <= window.floor:
            raise Refused(DropReason.REPLAYED, f"seq {seq} <= {window.floor} from {peer_id}")
        window.seen.add(seq)
        heapq.heappush(window.oldest, seq)
        window.highest = max(window.highest, seq)
        if len(window.seen) > self._limits.history:
            window.floor = heapq.heappop(window.oldest)
            window.seen.discard(window.floor)
        table.move_to_end(key)

    def _make_room(
        self, table: OrderedDict[bytes, _Window], peer_id: str, expired_below: int,
        *, member: bool,
    ) -> None:
        # least recently active first: forget senders whose every frame is stale by now
        while table:
            window = next(iter(table.values()))
            if window.highest >= expired_below:
                break
            table.popitem(last=False)
        if member and len(table) >= self._limits.max_senders:
            # evicting a live member would let its recent frames be replayed: refuse instead
            raise Refused(DropReason.SENDER_TABLE_FULL, f"no room to track member {peer_id}")
        while not member and len(table) >= self._limits.max_strangers:
            table.popitem(last=False)
            self.strangers_forgotten += 1


def _kind(envelope: Envelope) -> Kind:
    if isinstance(envelope, PublishEnvelope):
        return Kind.PUBLISH
    if isinstance(envelope, RequestEnvelope):
        return Kind.REQUEST
    return Kind.RESPONSE


def _header(envelope: Envelope) -> bytes:
    return _HEADER.pack(_MAGIC, VERSION, _kind(envelope))


def _body(envelope: Envelope) -> bytes:
    """auth (without the signature) and the kind's fields: everything signed but the data."""
    auth = envelope.auth
    if len(auth.public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a sender key has {PUBLIC_KEY_BYTES} bytes")
    parts = [auth.public_key, _U64.pack(auth.seq), _short_text(auth.sender)]
    if isinstance(envelope, RequestEnvelope):
        parts += [_U64.pack(envelope.request_id), _short_text(envelope.protocol)]
    elif isinstance(envelope, ResponseEnvelope):
        parts += [_U64.pack(envelope.request_id), _U8.pack(envelope.status)]
    return b"".join(parts)


def _signed_bytes(network_id: str, topic: str, header: bytes, body: bytes, data: bytes) -> bytes:
    return b"".join(
        [
            _long_text(FRAME_DOMAIN),
            _long_text(network_id),
            _long_text(topic),
            header,
            body,
            hashlib.sha256(data).digest(),
        ]
    )


def _long_text(text: str) -> bytes:
    raw = text.encode("ascii")
    return _U16.pack(len(raw)) + raw


def _short_text(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > 255:
        raise ValueError("envelope text fields hold at most 255 bytes")
    return _U8.pack(len(raw)) + raw


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._offset = 0

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._raw):
            raise MalformedEnvelope("truncated envelope")
        chunk = self._raw[self._offset : end]
        self._offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(_U64.size))[0]
        return value

    def short_text(self) -> str:
        raw = self.take(self.u8())
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedEnvelope("text field is not ASCII") from None

    def rest(self) -> bytes:
        return self._raw[self._offset :]
