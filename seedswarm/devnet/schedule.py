"""A devnet's timetable, derived from its round length and its chain's block time.

The round length is measured on this machine (seedswarm.devnet.calibration) unless given;
every window and wait follows from it and from the dev chain's block time, never from a fixed
number of seconds tuned on an idle machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seedswarm.devnet.spec import DevnetSpec

BLOCK_TIME_S = 1.0
"""A dev chain here mines a block per transaction and an empty one each second (BlockTicker)
when idle; a transaction sent now is in a block about this long after."""
VALIDATOR_MARGIN_S = 1.5
"""A validator sends its step this long after a window opens (validator.service)."""


@dataclass(frozen=True)
class DevnetSchedule:
    """Seconds and rounds of one devnet run."""

    round_length: int
    epoch_length: int
    """Rounds per reward epoch."""
    commit_window: int
    reveal_window: int

    @classmethod
    def derive(cls, spec: DevnetSpec, round_length: int) -> DevnetSchedule:
        """The schedule of `spec` with rounds of `round_length` seconds; windows the spec
        leaves at 0 are sized so that every validator's transaction, sent after its margin,
        is mined with room to spare, and never shorter than two rounds."""
        window = max(2 * round_length,
                     math.ceil(VALIDATOR_MARGIN_S + 2 * (spec.validators + 1) * BLOCK_TIME_S))
        return cls(
            round_length=round_length,
            epoch_length=spec.epoch_length or spec.rounds,
            commit_window=spec.commit_window or window,
            reveal_window=spec.reveal_window or window,
        )

    @property
    def epoch_s(self) -> int:
        return self.round_length * self.epoch_length

    def settle_delay_s(self) -> int:
        """From an epoch's end until its settlement may start."""
        return self.commit_window + self.reveal_window
