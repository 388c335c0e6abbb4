"""A receiving node's protection against peers: size, rate, and a ban for repeat offenders.

Pure bookkeeping, time passed in. Every inbound message first passes `admit` (banned peer?
oversized? over its token-bucket rate?), then the caller's own checks (envelope, replay,
membership), whose failures it reports with `reject`. A peer that accumulates `max_invalid`
rejections inside `window_s` is banned for `ban_s`: its messages are dropped unread. Every
refusal is counted by reason, overall and per peer, and the first few of each are logged.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

RATE_LIMITED = "rate_limited"
OVERSIZED = "oversized"
BANNED = "banned"

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

    def admit(self, peer: str, size: int, now: float) -> str | None:
        """None if the message may be examined, else the reason it is dropped unread."""
        state = self._state(peer, now)
        if now < state.banned_until:
            return self._count(peer, state, BANNED, f"{size} bytes", now)
        if size > self.policy.max_message_bytes:
            return self._count(peer, state, OVERSIZED, f"{size} bytes", now)
        elapsed = max(0.0, now - state.refilled_at)
        state.tokens = min(self.policy.burst, state.tokens + elapsed * self.policy.rate_per_s)
        state.refilled_at = now
        if state.tokens < 1.0:
            return self._count(peer, state, RATE_LIMITED, "over its rate", now)
        state.tokens -= 1.0
        return None

    def reject(self, peer: str, reason: str, detail: str, now: float) -> None:
        """Count a message from `peer` that failed the caller's checks."""
        self._count(peer, self._state(peer, now), reason, detail, now)

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

    def _count(self, peer: str, state: _PeerState, reason: str, detail: str, now: float) -> str:
        self.refused[reason] += 1
        state.refused[reason] += 1
        if self.refused[reason] <= _LOG_FIRST:
            _log.warning("refused a message from %s (%s): %s", peer, reason, detail)
        if reason == BANNED:
            return reason
        window_start = now - self.policy.window_s
        state.invalid_times = [t for t in state.invalid_times if t >= window_start] + [now]
        if len(state.invalid_times) >= self.policy.max_invalid and now >= state.banned_until:
            state.banned_until = now + self.policy.ban_s
            state.invalid_times.clear()
            self.bans += 1
            _log.warning("banning peer %s for %.0f s after repeated invalid messages",
                         peer, self.policy.ban_s)
        return reason
