"""The mutation tool: which mutants it makes, and that a run classifies them and writes nothing."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from tools.mutate import (
    ROOT,
    Equivalent,
    Runner,
    _Generator,
    is_equivalent,
    load_equivalents,
    mutants_of,
    mutate_module,
    score_of,
)

SOURCE = textwrap.dedent('''\
    """Module docstring: never mutated."""

    LIMIT: int = 3
    NAME = b"ss:x"


    def clamp(x: float, *, top: float = 1.0) -> float:
        """Docstring."""
        if x < 0 and top > 0:
            raise ValueError(f"negative {x}")
        values[0] = min(x, top)
        return -x if not x else x ** 2
    ''')


def _descriptions(source: str) -> list[str]:
    return [m.description for m in _Generator("toy", source.encode()).run()]


def test_every_operator_is_applied() -> None:
    found = _descriptions(SOURCE)
    expected = [
        "constant: `3` -> `(4)`", "constant: `3` -> `(2)`",
        """constant: `b"ss:x"` -> `(b'Xs:x')`""",
        "constant: `1.0` -> `(2.0)`",  # a default value
        "negate: `x < 0 and top > 0` -> `(not (x < 0 and top > 0))`",
        "boolean: `x < 0 and top > 0` -> `(x < 0 or top > 0)`",
        "compare: `x < 0` -> `(x <= 0)`", "compare: `x < 0` -> `(x > 0)`",
        'delete: `raise ValueError(f"negative {x}")` -> `pass`',
        "delete: `values[0] = min(x, top)` -> `pass`",
        "call: `min(x, top)` -> `(max(x, top))`",
        "return: `return -x if not x else x ** 2` -> `return None`",
        "arithmetic: `-x` -> `(x)`",
        "boolean: `not x` -> `(x)`",
        "arithmetic: `x ** 2` -> `(x * 2)`",
    ]
    for description in expected:
        assert description in found, description


def test_docstrings_annotations_and_messages_are_left_alone() -> None:
    found = " ".join(_descriptions(SOURCE))
    assert "docstring" not in found.lower()
    assert "int" not in found and "float" not in found  # annotations
    assert "negative" not in found.replace("raise ValueError(f\"negative {x}\")", "")


def test_every_mutant_compiles_and_changes_only_its_span() -> None:
    source = SOURCE.encode()
    for mutant in _Generator("toy", source).run():
        mutated = mutant.apply(source)
        ast.parse(mutated)
        assert mutated[: mutant.start] == source[: mutant.start]
        assert mutated[len(mutated) - (len(source) - mutant.end):] == source[mutant.end:]


def test_the_target_modules_all_give_mutants() -> None:
    assert len(mutants_of("validator.reward")) > 50
    for mutant in mutants_of("protocol.assignment"):
        ast.parse(mutant.apply((ROOT / "protocol" / "assignment.py").read_bytes()))


def test_equivalents_are_matched_by_module_function_and_mutation(tmp_path: Path) -> None:
    path = tmp_path / "eq.toml"
    path.write_text('[[equivalent]]\nmodule = "toy"\nfunction = "clamp"\n'
                    'mutation = "compare: `x < 0` -> `(x <= 0)`"\nwhy = "0 is clamped to 0"\n',
                    encoding="utf-8")
    equivalents = load_equivalents(path)
    assert equivalents == [Equivalent("toy", "clamp", "compare: `x < 0` -> `(x <= 0)`",
                                      "0 is clamped to 0")]
    mutants = _Generator("toy", SOURCE.encode()).run()
    matched = [m for m in mutants if is_equivalent(m, equivalents)]
    assert [m.description for m in matched] == ["compare: `x < 0` -> `(x <= 0)`"]


TOY = '''\
def clamp(x):
    if x < 0:
        return 0
    return x
'''
TOY_TEST = '''\
from toypkg.calc import clamp


def test_clamp():
    assert clamp(-1) == 0 and clamp(2) == 2 and clamp(0.5) == 0.5
'''


def test_a_run_classifies_mutants_and_leaves_the_tree_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "toypkg").mkdir()
    (tmp_path / "toypkg" / "__init__.py").write_text("", encoding="utf-8")
    module = tmp_path / "toypkg" / "calc.py"
    module.write_text(TOY, encoding="utf-8")
    (tmp_path / "test_calc.py").write_text(TOY_TEST, encoding="utf-8")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    work = tmp_path.parent / f"{tmp_path.name}-work"
    work.mkdir()
    equivalent = Equivalent("toypkg.calc", "clamp", "compare: `x < 0` -> `(x <= 0)`",
                            "clamp(0) is 0 either way")
    outcomes, _ = mutate_module("toypkg.calc", ["test_calc.py"], [equivalent],
                                Runner(fork=True, root=tmp_path), timeout=60.0, workdir=work)
    status = {o.mutant.description: o.status for o in outcomes}
    assert status["compare: `x < 0` -> `(x <= 0)`"] == "equivalent"
    assert status["compare: `x < 0` -> `(x > 0)`"] == "caught"
    assert status["constant: `0` -> `(1)`"] == "caught"
    score = score_of("toypkg.calc", outcomes)
    assert score.equivalent == 1 and score.caught == score.mutants - 1 and score.score == 100.0
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # not a byte written in the tree, no bytecode, no cache


def test_the_non_forking_runner_imports_the_mutant_too(tmp_path: Path) -> None:
    (tmp_path / "toypkg").mkdir()
    (tmp_path / "toypkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "toypkg" / "calc.py").write_text(TOY, encoding="utf-8")
    (tmp_path / "test_calc.py").write_text(TOY_TEST, encoding="utf-8")
    mutant = tmp_path.parent / f"{tmp_path.name}-mutant.py"
    mutant.write_text(TOY.replace("return 0", "return 1"), encoding="utf-8")
    runner = Runner(fork=False, root=tmp_path)
    assert runner.run("toypkg.calc", "-", ["test_calc.py"], 60.0)[0] == "survived"
    assert runner.run("toypkg.calc", str(mutant), ["test_calc.py"], 60.0)[0] == "caught"
