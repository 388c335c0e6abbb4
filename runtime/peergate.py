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
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from protocol.errors import RejectReason

RATE_LIMITED = "rate_limited"
OVERSIZED = "oversized"
BANNED = "banned"

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

    def __post_init__(self) -> None:
        if min(self.max_message_bytes, self.max_invalid, self.max_peers) < 1:
            raise ValueError("gate limits must be positive")
        if min(self.rate_per_s, self.burst, self.window_s, self.ban_s) <= 0:
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

    def __init__(self, policy: GatePolicy) -> None:
        self.policy = policy
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.bans = 0
        self._peers: OrderedDict[str, _PeerState] = OrderedDict()

    def admit(self, peer: str, size: int, now: float, *, origin: str | None = None) -> str | None:
        """None if the message `peer` forwarded (published by `origin`, by default `peer`
        itself) may be examined, else the reason it is dropped unread."""
        state = self._state(peer, now)
        if now < state.banned_until or (origin is not None and self.is_banned(origin, now)):
            return self._count(peer, origin, BANNED, f"{size} bytes", now)
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
        state = self._peers.get(peer)
        return state is not None and now < state.banned_until

    def refused_by(self, peer: str) -> dict[str, int]:
        """Refusals of one peer, by reason."""
        state = self._peers.get(peer)
        return {} if state is None else dict(state.refused)

    def active(self, since: float) -> int:
        """Peers that sent anything (admitted or not) at or after `since`."""
        return sum(1 for state in self._peers.values() if state.refilled_at >= since)

    def snapshot(self) -> dict[str, int]:
        """Counters for status files and dashboards."""
        out = {f"refused_{reason}": count for reason, count in sorted(self.refused.items())}
        out.update(accepted=self.accepted, bans=self.bans)
        return out

    def _state(self, peer: str, now: float) -> _PeerState:
        state = self._peers.get(peer)
        if state is None:
            state = _PeerState(tokens=self.policy.burst, refilled_at=now)
            self._peers[peer] = state
            while len(self._peers) > self.policy.max_peers:
                self._peers.popitem(last=False)
        self._peers.move_to_end(peer)
        return state

    def _count(self, peer: str, origin: str | None, reason: str, detail: str, now: float) -> str:
        """Count one refusal against the forwarding `peer`; strike whom it proves guilty."""
        origin = peer if origin is None else origin
        self.refused[reason] += 1
        self._state(peer, now).refused[reason] += 1
        relayed = "" if origin == peer else f" (published by {origin})"
        if self.refused[reason] <= _LOG_FIRST:
            _log.warning("refused a message from %s%s (%s): %s", peer, relayed, reason, detail)
        if reason == BANNED or (reason in _RELAYABLE and origin != peer):
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
