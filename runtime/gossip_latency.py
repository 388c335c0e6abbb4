"""How long gossiped messages take to arrive: signing time to receipt, per kind of message.

Certificates and endorsements carry their author's signing time (`sequence`: microseconds
since 1970), so a receiver measures each one's age on arrival. The age includes the clock
difference between the two hosts (small on NTP-synchronised machines, exactly zero on one
host). Bucket bounds are fractions of the round length: what matters is whether a message
arrives early in the round, not a number of seconds tuned on one machine.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

ROUND_FRACTIONS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Upper bounds of the histogram's buckets, as fractions of a round."""


@dataclass
class LatencyHistogram:
    """A cumulative histogram of delays in seconds (Prometheus' layout)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(self.bounds) or not self.bounds:
            raise ValueError("bucket bounds must be non-empty and increasing")
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        delay = max(0.0, seconds)  # a clock slightly behind the sender's reads as no delay
        self.counts[bisect.bisect_left(self.bounds, delay)] += 1
        self.total += delay
        self.count += 1

    def buckets(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), +inf last: cumulative."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class GossipLatency:
    """One histogram per kind of message ("bundle", "endorsement")."""

    def __init__(self, round_length: float, kinds: Iterable[str] = ("bundle", "endorsement")
                 ) -> None:
        bounds = tuple(round(f * round_length, 6) for f in ROUND_FRACTIONS)
        self.kinds = {kind: LatencyHistogram(bounds) for kind in kinds}

    def observe(self, kind: str, signed_us: int, now: float) -> None:
        """A message of `kind` signed at `signed_us` (microseconds) arrived at `now`."""
        histogram = self.kinds.get(kind)
        if histogram is not None:
            histogram.observe(now - signed_us / 1e6)
