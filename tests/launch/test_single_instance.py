"""One key, one node: a second node on the same state or keys is refused, and a killed one
leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from seedswarm.launch.single_instance import LOCK_NAME, hold

HOLDER = """
import sys, time
from pathlib import Path
from seedswarm.launch.single_instance import hold
with hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_node_is_refused_with_the_holder_and_a_killed_one_frees_it(
        tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (pytest.raises(ConfigError, match=rf"pid {holder.pid}\): one key"),
              hold(tmp_path / "other", tmp_path)):
            pass
        with hold(tmp_path / "other"):  # what it had taken before the refusal is released
            assert (tmp_path / "other" / LOCK_NAME).read_text() == str(os.getpid())
    finally:
        holder.kill()  # kill -9: no cleanup ran
        holder.wait()
    deadline = time.monotonic() + 30
    while True:
        try:
            with hold(tmp_path):
                break
        except ConfigError:
            assert time.monotonic() < deadline, "the lock outlived its process"
            time.sleep(0.05)


def test_one_process_may_not_hold_the_same_directory_twice(tmp_path: Path) -> None:
    with hold(tmp_path), pytest.raises(ConfigError, match="in use"), hold(tmp_path):
        pass
