"""A devnet's timetable, derived from its round length and its chain's block time.

The round length is measured on this machine (seedswarm.devnet.calibration) unless given;
every window and wait follows from it and from the dev chain's block time, never from a fixed
number of seconds tuned on an idle machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.network_operator import BLOCK_TIME_S, epoch_windows


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
        window = epoch_windows(round_length, spec.validators, BLOCK_TIME_S)
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
