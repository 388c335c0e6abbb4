"""What a devnet is: its size, wires, schedule and model, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ConfigError

CHAINS = ("embedded", "anvil")
BROKERS = ("embedded", "mosquitto")


@dataclass(frozen=True)
class DevnetSpec:
    """A local network to bring up. `epoch_length` None means one epoch of `rounds` rounds.

    Its model is a small GPT trained from scratch on the synthetic task (the devnet's genesis,
    seedswarm.devnet.devnet_genesis); every learning rule is the network's default
    (protocol.netconfig).
    """

    miners: int = 3
    validators: int = 1
    rounds: int = 5
    transport: str = "mqtt"
    broker: str = "embedded"
    chain: str = "embedded"
    round_length: int | None = None
    """Seconds per round; None: measured on this machine (seedswarm.devnet.calibration)."""
    epoch_length: int | None = None
    commit_window: int = 0
    """Seconds validators have to commit an epoch's weights; 0: derived (devnet.schedule)."""
    reveal_window: int = 0
    """Seconds to reveal after the commit window; 0: derived (devnet.schedule)."""
    startup_s: float = 20.0
    workdir: Path | None = None
    seed: int = 0
    """Seeds the base model's initialisation and the data split."""
    keep_alive: bool = False
    """Run until stopped (nodes never stop at `rounds`; a faucet funds joiners)."""
    attackers: tuple[tuple[str, int], ...] = ()
    """(attack kind, count): extra miners running the simulator's attacker classes."""

    def __post_init__(self) -> None:
        if self.miners < 1 or self.validators < 1 or self.rounds < 1:
            raise ConfigError("a devnet needs miners >= 1, validators >= 1 and rounds >= 1")
        if self.transport not in ("mqtt", "libp2p"):
            raise ConfigError(f"transport must be mqtt or libp2p, got {self.transport!r}")
        if self.broker not in BROKERS:
            raise ConfigError(f"broker must be one of {BROKERS}, got {self.broker!r}")
        if self.chain not in CHAINS and not self.chain.startswith(("http://", "https://")):
            raise ConfigError(f"chain must be embedded, anvil or an http(s) URL: {self.chain!r}")
        if self.round_length is not None and self.round_length < 1:
            raise ConfigError("round_length must be >= 1 second (the chain counts whole seconds)")
        if self.commit_window < 0 or self.reveal_window < 0:
            raise ConfigError("commit and reveal windows must be >= 0 (0: sized for the devnet)")

    @property
    def total_miners(self) -> int:
        """Registered miners: honest ones plus every attacker."""
        return self.miners + sum(n for _, n in self.attackers)

    @property
    def epoch_rounds(self) -> int:
        """Rounds per reward epoch."""
        return self.epoch_length or self.rounds

    @property
    def epochs_to_settle(self) -> int:
        """Complete epochs inside the run (at least one is always settled)."""
        return max(1, self.rounds // self.epoch_rounds)
