"""Entry point of one devnet node process:
`python -m seedswarm.devnet.node_process --config FILE [--attack KIND]`.

The node is the production one (seedswarm.launch); with `--attack` a miner runs one of the
simulator's attackers instead of honest work (seedswarm.devnet.attack_miners).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from node.honest_miner import Miner
from protocol.identity import NodeKey
from seedswarm.devnet.attack_miners import copycat_sidecar, live_miner
from seedswarm.launch.runner import run_from_settings
from seedswarm.launch.settings import load_settings
from training.work import WorkConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--attack", default="", help="miners only: the attack to run")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, env=os.environ)
    attack: str = args.attack

    def miner(key: NodeKey, work: WorkConfig) -> Miner:
        return live_miner(attack, key, work)

    run_from_settings(settings, os.environ, miner=miner, sidecars=(copycat_sidecar,))


if __name__ == "__main__":
    main()
