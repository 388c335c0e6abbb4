"""The devnet's node processes: start, kill (as a crash would), restart, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_GRACE_S = 10.0


@dataclass
class NodeProcess:
    """One node: its settings file, status file, and the running process if any."""

    name: str
    role: str
    settings_file: Path
    status_file: Path
    output_file: Path
    process: subprocess.Popen[bytes] | None = None
    attack: str = ""
    """Miners only: the simulator's attack it runs instead of honest work ("" = honest)."""
    starts: int = 0
    expected_exit: bool = False

    def start(self, env: dict[str, str]) -> None:
        """Launch the node (a fresh process each time)."""
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        with self.output_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seedswarm.devnet.node_process",
                 "--config", str(self.settings_file), "--attack", self.attack],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1
        self.expected_exit = False

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a power cut would do."""
        if self.process is not None and self.process.poll() is None:
            self.expected_exit = True
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.expected_exit = True
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def crashed(self) -> bool:
        """Exited without being asked to."""
        return (self.process is not None and self.process.poll() is not None
                and not self.expected_exit)

    def status(self) -> dict[str, Any]:
        """The node's latest status snapshot ({} before its first)."""
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data

    def output_tail(self, chars: int = 3000) -> str:
        """The end of the node's output, for error messages."""
        try:
            return self.output_file.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Fleet:
    """All node processes of a devnet."""

    nodes: dict[str, NodeProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def start_all(self) -> None:
        for node in self.nodes.values():
            node.start(self.env)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.expected_exit = True
                node.process.terminate()
        for node in self.nodes.values():
            node.stop()

    def statuses(self) -> dict[str, dict[str, Any]]:
        return {name: node.status() for name, node in self.nodes.items()}

    def crashed(self) -> list[NodeProcess]:
        return [node for node in self.nodes.values() if node.crashed]


def _die_with_parent() -> None:
    """Linux: the node gets SIGTERM when the devnet process dies, however it dies (a killed
    devnet must not leave nodes running that nobody stops)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def node_env(password: str) -> dict[str, str]:
    """The environment every node process gets (single-threaded torch: nodes share cores)."""
    env = dict(os.environ)
    env.update(SEEDSWARM_PASSWORD=password, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    return env
