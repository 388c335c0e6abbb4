"""The layers, bottom to top, and the one-way data flow between them.

    protocol/            the rules every node must agree on (pure: no I/O library)
    adapters/            I/O: transports, chain client, on-disk log, keystores, launchers
    training/            models, tasks, the work function, replica, recomputation
    runtime/             what every live node runs: model state, follower, catch-up, gate
    node/  validator/    the miner; the validator (scoring, pipeline, service)
    seedswarm/launch     the production composition of a live node
    seedswarm/sim        the in-process simulator (attack library included)
    seedswarm/devnet     a local network of real processes, attackers injected from outside
    seedswarm/commands   the CLI
    bench/               benchmarks

A module may import its own area and the areas its row allows, never one above it or beside
it (node/ and validator/ never import each other; the production composition never imports the
simulator or the devnet). Checked on the source, so an import anywhere (even in a function
body) counts; and, for the two commands an operator runs, on what a real process loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIRST_PARTY = {"protocol", "adapters", "training", "runtime", "node", "validator", "seedswarm",
               "bench", "tests"}

_BASE = {"protocol"}
ALLOWED: dict[str, set[str]] = {
    "protocol": _BASE,
    "adapters": _BASE | {"adapters"},
    "training": _BASE | {"training"},
    "runtime": _BASE | {"adapters", "training", "runtime"},
    "node": _BASE | {"adapters", "training", "runtime", "node"},
    "validator": _BASE | {"adapters", "training", "runtime", "validator"},
}
_LIVE = _BASE | {"adapters", "training", "runtime", "node", "validator"}
ALLOWED |= {
    "seedswarm": _LIVE | {"seedswarm"},  # the package's own __init__ and cli
    "seedswarm.launch": _LIVE | {"seedswarm.launch"},
    "seedswarm.sim": _LIVE | {"seedswarm.sim"},
    "seedswarm.devnet": _LIVE | {"seedswarm.launch", "seedswarm.sim", "seedswarm.devnet"},
    "seedswarm.commands": _LIVE | {"seedswarm", "seedswarm.launch", "seedswarm.sim",
                                   "seedswarm.devnet", "seedswarm.commands"},
    "bench": FIRST_PARTY - {"tests"} | {"seedswarm.launch", "seedswarm.sim", "seedswarm.devnet",
                                         "seedswarm.commands"},
}

IO_LIBRARIES = {"web3", "eth_tester", "libp2p", "multiaddr", "aiomqtt", "amqtt", "paho", "trio",
                "asyncio", "socket", "subprocess", "requests", "urllib"}
"""What protocol/'s rules never import: they are computed, not fetched."""


def area(module: str) -> str:
    """The layer a dotted module name belongs to (seedswarm is split by sub-package)."""
    parts = module.split(".")
    if parts[0] == "seedswarm" and len(parts) > 1 and parts[1] in (
            "launch", "sim", "devnet", "commands"):
        return f"seedswarm.{parts[1]}"
    return parts[0]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    """Every absolute module name `source` imports (`from a.b import c` gives a.b and a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(module: str, source: str) -> list[str]:
    """The imports of `module` (whose text is `source`) that its layer may not make."""
    mine = area(module)
    out = []
    for name in sorted(imported_modules(source, module)):
        top = name.split(".")[0]
        if top in FIRST_PARTY:
            target = area(name)
            if target not in ALLOWED[mine] and not (name == "seedswarm" and mine != "protocol"):
                out.append(f"{module} imports {name} ({mine} may not import {target})")
        elif mine == "protocol" and top in IO_LIBRARIES:
            out.append(f"{module} imports {name} (protocol/ holds rules, not I/O)")
    return out


def production_files() -> list[Path]:
    return sorted(p for top in sorted(FIRST_PARTY - {"tests"}) for p in (ROOT / top).rglob("*.py"))


def test_every_module_respects_its_layer() -> None:
    files = production_files()
    assert len(files) > 150, "the production packages are missing"
    found = [v for path in files
             for v in violations(module_name(path), path.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("module", "source"), [
    ("protocol.rounds", "import web3\n"),
    ("protocol.rounds", "from adapters.transport.base import Transport\n"),
    ("protocol.rounds", "def f():\n    import asyncio\n"),
    ("training.work", "from runtime.model_state import ModelState\n"),
    ("node.service.miner", "from validator.pipeline import ScoringPipeline\n"),
    ("validator.pipeline", "def f():\n    import node.honest_miner\n"),
    ("seedswarm.launch.compose", "from seedswarm.sim.attackers import ATTACKS\n"),
    ("seedswarm.launch.compose", "from seedswarm.devnet.copycat import LiveCopycat\n"),
    ("seedswarm.sim.swarm", "from seedswarm.devnet.spec import DevnetSpec\n"),
    ("adapters.chain.client", "from training.model import GPT\n"),
])
def test_the_checker_sees_a_wrong_import(module: str, source: str) -> None:
    assert violations(module, source), f"{module}: {source!r} should be refused"


def test_the_checker_allows_the_one_way_flow() -> None:
    assert not violations("validator.model_oracle", "from training.recompute import X\n")
    assert not violations("seedswarm.devnet.node_process", "from seedswarm.launch import a\n")
    assert not violations("protocol.settlement.merkle", "from eth_abi.abi import encode\n")


def test_no_two_modules_share_a_file_name() -> None:
    """Every file's name says what it is, once. The CLI's command modules and the benchmarks
    are named after the command or the thing they measure, so they may repeat a name."""
    seen: dict[str, list[str]] = defaultdict(list)
    for path in production_files():
        rel = path.relative_to(ROOT)
        if path.name == "__init__.py" or rel.parts[0] == "bench" or rel.parts[:2] == (
                "seedswarm", "commands"):
            continue
        seen[path.name].append(str(rel))
    repeated = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not repeated, repeated


_LOADED = """
import sys
from seedswarm.cli import main
sys.argv = ["seedswarm", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("role", ["miner", "validator"])
def test_a_node_command_loads_no_simulator_or_devnet(role: str, tmp_path: Path) -> None:
    """`seedswarm miner|validator --config X` (X missing: the command fails on it) loads the
    production composition only."""
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, role, "--config", str(tmp_path / "missing.toml")],
        capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path,
    )
    loaded = result.stdout.split()
    assert "seedswarm.launch.compose" in loaded  # the command really got as far as the node
    bad = [m for m in loaded if m.startswith(("seedswarm.sim", "seedswarm.devnet", "bench"))]
    assert not bad, bad


def test_protocol_rules_load_no_io_library() -> None:
    modules = [module_name(p) for p in sorted((ROOT / "protocol").rglob("*.py"))]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print('\\n'.join(sorted(sys.modules)))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True).stdout.split()
    forbidden = {"web3", "libp2p", "aiomqtt", "amqtt", "trio", "paho", "eth_tester"}
    bad = [m for m in loaded if m.split(".")[0] in forbidden]
    assert not bad, bad


def test_the_validator_service_loads_no_chain_client() -> None:
    """The service depends on the settlement port, not on web3: the in-memory chain runs it,
    and the web3 client loads only where the composition root builds it."""
    code = ("import sys\nimport validator.service.validator\n"
            "import adapters.chain.memory_settlement\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True).stdout.split()
    assert "adapters.chain.settlement_port" in loaded
    bad = [m for m in loaded if m.split(".")[0] in {"web3", "eth_tester", "eth_account"}]
    assert not bad, bad
