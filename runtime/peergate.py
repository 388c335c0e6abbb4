"""A receiving node's protection against peers: size, rate, and a ban for repeat offenders.

Pure bookkeeping, time passed in. Every inbound message first passes `admit` (banned peer?
oversized? over its token-bucket rate?), then the caller's own checks (envelope, replay,
membership), whose failures it reports with `reject`. A peer that accumulates `max_invalid`
strikes inside `window_s` is banned for `ban_s`: its messages are dropped unread. Every
refusal is counted by reason, overall and per peer, and the first few of each are logged.

Two peers stand behind each message (adapters.transport.base.Delivery): the `origin` that
published it on the transport (authenticated by its signature) and the `peer` that forwarded
it to us (on gossip, any neighbour). Who takes the strike depends on what the refusal proves:

- the bytes are bad in themselves (malformed, forged, wrong network, oversized, from no
  member, ...): only the origin could have published them, so the origin takes it, whoever
  relayed them (an honest relay forwards what it cannot judge);
- a refusal anyone can cause by sending again a message someone else signed (`REPLAYABLE`:
  wrong round, duplicate, replayed or stale sequence) or by relaying a burst (rate limited)
  proves nothing about the origin, nor about a relay: it is a strike only when the origin
  delivered it itself, and otherwise only counted.

Rate limits are per forwarder, so a replayer spends its own budget, never its victim's.

Peer ids cost nothing, so a gate that knows the membership (`members`) keeps registered
members apart from strangers: members have their own table, which strangers can never evict
(a flood of fresh ids used to push a banned member out of the table, lifting its ban, and each
fresh id came with a full burst of its own); strangers share a small table (least recently
active forgotten) and one token bucket, spent before their own.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.errors import RejectReason
from protocol.identity import NodePublicKey
from protocol.membership import MembershipTimeline

RATE_LIMITED = "rate_limited"
OVERSIZED = "oversized"
BANNED = "banned"
STRANGERS_OVER_BUDGET = "strangers_over_budget"
_NOT_HELD_AGAINST = (BANNED, STRANGERS_OVER_BUDGET)
"""Refusals counted but never toward a ban: the peer did nothing wrong by itself."""

REPLAYABLE = frozenset(reason.value for reason in (
    RejectReason.WRONG_ROUND, RejectReason.DUPLICATE, RejectReason.REPLAYED,
    RejectReason.STALE_SEQUENCE,
))
"""Refusals a third party can cause with a message someone else signed (see above)."""
_RELAYABLE = REPLAYABLE | {RATE_LIMITED}

_log = logging.getLogger("runtime.peergate")
_LOG_FIRST = 5


@dataclass(frozen=True)
class GatePolicy:
    """Limits per sending peer."""

    max_message_bytes: int = 1 << 20
    rate_per_s: float = 50.0
    burst: float = 100.0
    max_invalid: int = 16
    window_s: float = 60.0
    ban_s: float = 300.0
    max_peers: int = 4096
    """Members tracked (least recently active forgotten: only among members)."""
    max_strangers: int = 256
    """Strangers tracked (peers the membership does not know)."""
    stranger_rate_per_s: float = 20.0
    """Messages per second all strangers together may have examined."""
    stranger_burst: float = 100.0

    def __post_init__(self) -> None:
        if min(self.max_message_bytes, self.max_invalid, self.max_peers, self.max_strangers) < 1:
            raise ValueError("gate limits must be positive")
        rates = (self.rate_per_s, self.burst, self.window_s, self.ban_s,
                 self.stranger_rate_per_s, self.stranger_burst)
        if min(rates) <= 0:
            raise ValueError("gate rates and durations must be positive")


@dataclass
class _PeerState:
    tokens: float
    refilled_at: float
    invalid_times: list[float] = field(default_factory=list)
    banned_until: float = float("-inf")
    refused: Counter[str] = field(default_factory=Counter)


class PeerGate:
    """Per-peer admission control; see the module docstring."""

    def __init__(
        self, policy: GatePolicy, *, members: Callable[[str], bool] | None = None
    ) -> None:
        """`members`: whether a peer id is a registered member's (see `member_peers`);
        None treats every peer as a member (a network without membership, tests)."""
        self.policy = policy
        self.members = members
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.bans = 0
        self._peers: OrderedDict[str, _PeerState] = OrderedDict()
        self._strangers: OrderedDict[str, _PeerState] = OrderedDict()
        self._stranger_tokens = policy.stranger_burst
        self._strangers_refilled_at: float | None = None

    def admit(self, peer: str, size: int, now: float, *, origin: str | None = None) -> str | None:
        """None if the message `peer` forwarded (published by `origin`, by default `peer`
        itself) may be examined, else the reason it is dropped unread."""
        state = self._state(peer, now)
        if now < state.banned_until or (origin is not None and self.is_banned(origin, now)):
            return self._count(peer, origin, BANNED, f"{size} bytes", now)
        if not self._is_member(peer) and not self._spend_stranger_token(now):
            return self._count(peer, origin, STRANGERS_OVER_BUDGET,
                               f"unregistered peers over {self.policy.stranger_rate_per_s:g}/s",
                               now)
        if size > self.policy.max_message_bytes:
            return self._count(peer, origin, OVERSIZED, f"{size} bytes", now)
        elapsed = max(0.0, now - state.refilled_at)
        state.tokens = min(self.policy.burst, state.tokens + elapsed * self.policy.rate_per_s)
        state.refilled_at = now
        if state.tokens < 1.0:
            return self._count(peer, origin, RATE_LIMITED, "over its rate", now)
        state.tokens -= 1.0
        return None

    def reject(
        self, peer: str, reason: str, detail: str, now: float, *, origin: str | None = None
    ) -> None:
        """Count a message that failed the caller's checks: forwarded by `peer`, published
        by `origin` (by default `peer` itself)."""
        self._count(peer, origin, reason, detail, now)

    def accept(self) -> None:
        """Count a message that passed every check."""
        self.accepted += 1

    def is_banned(self, peer: str, now: float) -> bool:
        """Whether `peer`'s messages are currently dropped unread."""
        state = self._peers.get(peer) or self._strangers.get(peer)
        return state is not None and now < state.banned_until

    def refused_by(self, peer: str) -> dict[str, int]:
        """Refusals of one peer, by reason."""
        state = self._peers.get(peer) or self._strangers.get(peer)
        return {} if state is None else dict(state.refused)

    def active(self, since: float) -> int:
        """Peers that sent anything (admitted or not) at or after `since`."""
        states = (*self._peers.values(), *self._strangers.values())
        return sum(1 for state in states if state.refilled_at >= since)

    @property
    def num_members(self) -> int:
        """Members' states tracked."""
        return len(self._peers)

    @property
    def num_strangers(self) -> int:
        """Strangers' states tracked."""
        return len(self._strangers)

    def snapshot(self) -> dict[str, int]:
        """Counters for status files and dashboards."""
        out = {f"refused_{reason}": count for reason, count in sorted(self.refused.items())}
        out.update(accepted=self.accepted, bans=self.bans)
        return out

    def _is_member(self, peer: str) -> bool:
        return self.members is None or self.members(peer)

    def _spend_stranger_token(self, now: float) -> bool:
        last = now if self._strangers_refilled_at is None else self._strangers_refilled_at
        refill = max(0.0, now - last) * self.policy.stranger_rate_per_s
        self._stranger_tokens = min(self.policy.stranger_burst, self._stranger_tokens + refill)
        self._strangers_refilled_at = now
        if self._stranger_tokens < 1.0:
            return False
        self._stranger_tokens -= 1.0
        return True

    def _state(self, peer: str, now: float) -> _PeerState:
        member = self._is_member(peer)
        table, other = (self._peers, self._strangers) if member else (self._strangers,
                                                                      self._peers)
        limit = self.policy.max_peers if member else self.policy.max_strangers
        state = table.get(peer)
        if state is None:
            # a stranger that registered (or a member that left) keeps its record and ban
            state = other.pop(peer, None) or _PeerState(tokens=self.policy.burst,
                                                        refilled_at=now)
            table[peer] = state
            while len(table) > limit:
                table.popitem(last=False)
        table.move_to_end(peer)
        return state

    def _count(self, peer: str, origin: str | None, reason: str, detail: str, now: float) -> str:
        """Count one refusal against the forwarding `peer`; strike whom it proves guilty."""
        origin = peer if origin is None else origin
        self.refused[reason] += 1
        self._state(peer, now).refused[reason] += 1
        relayed = "" if origin == peer else f" (published by {origin})"
        if self.refused[reason] <= _LOG_FIRST:
            _log.warning("refused a message from %s%s (%s): %s", peer, relayed, reason, detail)
        if reason in _NOT_HELD_AGAINST or (reason in _RELAYABLE and origin != peer):
            return reason
        self._strike(origin, self._state(origin, now), now)
        return reason

    def _strike(self, peer: str, state: _PeerState, now: float) -> None:
        window_start = now - self.policy.window_s
        state.invalid_times = [t for t in state.invalid_times if t >= window_start] + [now]
        if len(state.invalid_times) >= self.policy.max_invalid and now >= state.banned_until:
            state.banned_until = now + self.policy.ban_s
            state.invalid_times.clear()
            self.bans += 1
            _log.warning("banning peer %s for %.0f s after repeated invalid messages",
                         peer, self.policy.ban_s)


def member_peers(timeline: MembershipTimeline) -> Callable[[str], bool]:
    """Whether a peer id belongs to a member of any of `timeline`'s kept entries (transport
    peer ids derive from the node key the membership lists); rebuilt when it changes."""
    cache: tuple[frozenset[bytes], frozenset[str]] = (frozenset(), frozenset())

    def known(peer: str) -> bool:
        nonlocal cache
        keys = timeline.member_keys()
        if keys is not cache[0]:
            cache = (keys, frozenset(NodePublicKey.from_bytes(k).peer_id for k in keys))
        return peer in cache[1]

    return known
