"""Mutation testing of the consensus and reward modules: which small changes do the tests miss?

    python -m tools.mutate                        # every module of TARGETS (~35 min, 2 cores)
    python -m tools.mutate protocol.replay        # one module
    python -m tools.mutate --list protocol.replay # the mutants, without running anything
    make mutation MODULES="protocol.replay validator.reward"

For each module, every mutant (one small change of its source, see ``OPERATORS``) is run
against the module's own fast tests (``TARGETS``; pytest ``-x``, the default markers, no cache,
one process at a time). A mutant is *caught* when the tests fail or time out, *survives* when
they pass. Survivors that cannot change behaviour are listed, with the argument, in
``tools/mutation_equivalents.toml``; the score is caught / (mutants - equivalent).

The source tree is never written: a child process imports the mutated copy of the module from a
temporary directory through an import hook, so an interrupted run (Ctrl-C, a kill, a crash)
leaves nothing to restore. The one limit of the hook: a Python process that a test starts
itself imports the original module. Each child is forked from a parent that has imported the
heavy third-party packages once (``--no-fork``: a fresh interpreter each time, twice as slow).
Results go to ``out/mutation.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import dataclasses
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tools" / "mutation_equivalents.toml"
DEFAULT_JSON = ROOT / "out" / "mutation.json"
_N = TypeVar("_N", bound=ast.AST)

TARGETS: dict[str, tuple[str, ...]] = {
    "protocol.quantize": ("tests/protocol/test_quantize.py", "tests/protocol/test_kat_quantize.py"),
    "protocol.signing": ("tests/protocol/test_signing.py", "tests/protocol/test_kat_messages.py"),
    "protocol.assignment": ("tests/protocol/test_assignment.py",
                            "tests/protocol/test_kat_randomness.py"),
    "protocol.replay": ("tests/protocol/test_replay.py", "tests/protocol/test_replay_layers.py"),
    "protocol.randomness": ("tests/protocol/test_randomness.py",
                            "tests/protocol/test_kat_randomness.py"),
    "protocol.perturb": ("tests/protocol/test_perturb.py", "tests/protocol/test_kat_directions.py"),
    "protocol.apply": ("tests/protocol/test_apply.py", "tests/protocol/test_kat_apply.py"),
    "validator.filters": ("tests/validator/test_filters.py",),
    "validator.reward": ("tests/validator/test_reward.py",),
    "validator.verification": ("tests/validator/test_verification_rules.py",
                               "tests/validator/test_verification.py"),
}
"""Each module and its own fast tests (the files the mutants run against)."""

_COMPARE_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
_BINOP_SWAPS: dict[type[ast.operator], tuple[type[ast.operator], ...]] = {
    ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,), ast.Div: (ast.Mult,),
    ast.FloorDiv: (ast.Div, ast.Mult), ast.Mod: (ast.FloorDiv,), ast.Pow: (ast.Mult,),
    ast.LShift: (ast.RShift,), ast.RShift: (ast.LShift,), ast.BitAnd: (ast.BitOr,),
    ast.BitOr: (ast.BitAnd,), ast.BitXor: (ast.BitOr,), ast.MatMult: (ast.Mult,),
}
_SWAPPED_CALLS = {"min": "max", "max": "min", "all": "any", "any": "all"}

OPERATORS = (
    "compare (< <= > >= == != is in: each to its neighbours)",
    "arithmetic (+ - * / // % ** << >> & | ^, also in augmented assignments)",
    "constant (ints +-1, floats +1, True/False swapped, str/bytes first character changed)",
    "boolean (and <-> or, a `not` or unary minus removed, if/while/ternary condition negated)",
    "call (min <-> max, all <-> any)",
    "return (a returned value replaced by None)",
    "delete (a raise, a call statement, an assignment to an item or attribute, del, "
    "break/continue: replaced by pass)",
)


@dataclass(frozen=True)
class Mutant:
    """One change of one module's source: the span it replaces and the text it puts there."""

    module: str
    function: str
    line: int
    start: int  # byte offsets into the UTF-8 source
    end: int
    original: str
    replacement: str
    kind: str

    @property
    def description(self) -> str:
        return f"{self.kind}: `{self.original}` -> `{self.replacement}`"

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode("utf-8") + source[self.end :]


def _with(node: _N, **changes: object) -> _N:
    """A shallow copy of ``node`` with some fields replaced."""
    new = copy.copy(node)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Generator:
    """Walks a module's AST and lists its mutants (see ``OPERATORS`` for what is changed)."""

    def __init__(self, module: str, source: bytes) -> None:
        self.module = module
        self.source = source
        self.tree = ast.parse(source)
        self._line_starts = [0]
        for i, byte in enumerate(source):
            if byte == 0x0A:
                self._line_starts.append(i + 1)
        self.mutants: list[Mutant] = []
        self._scope: list[str] = []

    # -- spans and output -------------------------------------------------------------------

    def _offset(self, line: int, col: int) -> int:
        return self._line_starts[line - 1] + col

    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self._offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def _add(self, node: ast.AST, replacement: str, kind: str) -> None:
        start, end = self._span(node)
        original = self.source[start:end].decode("utf-8")
        self.mutants.append(Mutant(
            module=self.module, function=".".join(self._scope) or "<module>",
            line=node.lineno, start=start, end=end,  # type: ignore[attr-defined]
            original=_one_line(original), replacement=replacement, kind=kind,
        ))

    def _expr(self, node: ast.expr, new: ast.expr, kind: str) -> None:
        self._add(node, f"({ast.unparse(new)})", kind)

    # -- traversal --------------------------------------------------------------------------

    def run(self) -> list[Mutant]:
        self._body(self.tree.body)
        seen: set[bytes] = set()
        unique = []
        for mutant in self.mutants:
            text = mutant.apply(self.source)
            if text not in seen:
                seen.add(text)
                unique.append(mutant)
        return unique

    def _body(self, body: Sequence[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str):
                continue  # docstring
            self._stmt(stmt)

    def _stmt(self, stmt: ast.stmt) -> None:
        match stmt:
            case ast.Import() | ast.ImportFrom() | ast.Global() | ast.Nonlocal() | ast.Pass():
                return
            case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
                self._scope.append(stmt.name)
                if not isinstance(stmt, ast.ClassDef):
                    for default in (*stmt.args.defaults, *stmt.args.kw_defaults):
                        if default is not None:
                            self._walk(default)
                self._body(stmt.body)
                self._scope.pop()
                return
            case ast.Assign(targets=[ast.Name(id="__all__")]):
                return
            case ast.If(test=ast.Name(id="TYPE_CHECKING")):
                return
            case ast.Raise():
                self._add(stmt, "pass", "delete")
                for part in (stmt.exc, stmt.cause):
                    if part is not None:
                        self._walk(part, strings=False)
                return
            case ast.Expr(value=ast.Constant(value=str())):
                return  # a docstring of the statement above it
            case ast.Expr(value=ast.Call()) | ast.Delete() | ast.Continue() | ast.Break():
                self._add(stmt, "pass", "delete")
            case ast.Assign(targets=targets) if any(
                    isinstance(t, ast.Subscript | ast.Attribute) for t in targets):
                self._add(stmt, "pass", "delete")
            case ast.AugAssign(target=target, op=op):
                if isinstance(target, ast.Subscript | ast.Attribute):
                    self._add(stmt, "pass", "delete")
                for alt in _BINOP_SWAPS.get(type(op), ()):
                    self._add(stmt, ast.unparse(_with(stmt, op=alt())),
                              "arithmetic")
            case ast.Return(value=value) if value is not None and not (
                    isinstance(value, ast.Constant) and value.value is None):
                self._add(stmt, "return None", "return")
            case ast.If(test=test) | ast.While(test=test) if not _is_not(test):
                self._expr(test, ast.UnaryOp(ast.Not(), test), "negate")
        for field, value in ast.iter_fields(stmt):
            if field in {"annotation", "returns", "type_comment", "decorator_list"}:
                continue
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self._body_no_docstring(value)
                else:
                    for item in value:
                        if isinstance(item, ast.AST):
                            self._walk(item)
            elif isinstance(value, ast.AST):
                self._walk(value)

    def _body_no_docstring(self, body: Sequence[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _walk(self, node: ast.AST, *, strings: bool = True) -> None:
        if isinstance(node, ast.JoinedStr):
            return  # f-strings: message text, and their parts have no reliable positions
        if isinstance(node, ast.ExceptHandler):
            for stmt in node.body:
                self._stmt(stmt)
            if node.type is not None:
                self._walk(node.type, strings=strings)
            return
        if isinstance(node, ast.stmt):
            self._stmt(node)
            return
        if isinstance(node, ast.expr):
            self._mutate_expr(node, strings=strings)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr_context | ast.operator | ast.cmpop | ast.unaryop
                          | ast.boolop):
                continue
            if isinstance(node, ast.arg) and child is node.annotation:
                continue
            self._walk(child, strings=strings)

    def _mutate_expr(self, node: ast.expr, *, strings: bool) -> None:
        match node:
            case ast.Compare(ops=ops):
                for i, cmp in enumerate(ops):
                    for cmp_alt in _COMPARE_SWAPS.get(type(cmp), ()):
                        new_ops = list(ops)
                        new_ops[i] = cmp_alt()
                        self._expr(node, _with(node, ops=new_ops), "compare")
            case ast.BinOp(op=op):
                for alt in _BINOP_SWAPS.get(type(op), ()):
                    self._expr(node, _with(node, op=alt()), "arithmetic")
            case ast.BoolOp(op=bool_op):
                other: ast.boolop = ast.Or() if isinstance(bool_op, ast.And) else ast.And()
                self._expr(node, _with(node, op=other), "boolean")
            case ast.UnaryOp(op=ast.Not() | ast.USub() | ast.Invert(), operand=operand):
                self._expr(node, operand, "boolean" if isinstance(node.op, ast.Not) else
                           "arithmetic")
            case ast.IfExp(test=test) if not _is_not(test):
                self._expr(node, _with(
                    node, test=ast.UnaryOp(ast.Not(), test)), "negate")
            case ast.Call(func=ast.Name(id=name)) if name in _SWAPPED_CALLS:
                new_func = ast.Name(_SWAPPED_CALLS[name], ast.Load())
                self._expr(node, _with(node, func=new_func), "call")
            case ast.Constant(value=value):
                for new in _constant_mutations(value, strings=strings):
                    self._expr(node, ast.Constant(new), "constant")


def _is_not(node: ast.expr) -> bool:
    """``not x``: negating it is the same change as removing its ``not`` (made anyway)."""
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)


Literal = str | bytes | bool | int | float


def _constant_mutations(value: object, *, strings: bool) -> list[Literal]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value + 1.0]
    if isinstance(value, str) and strings:
        return ["X" + value[1:] if value[:1] != "X" else "Y" + value[1:]]
    if isinstance(value, bytes) and strings:
        return [b"X" + value[1:] if value[:1] != b"X" else b"Y" + value[1:]]
    return []


def mutants_of(module: str, root: Path = ROOT) -> list[Mutant]:
    """Every mutant of ``module`` (a dotted name under ``root``), in source order."""
    return _Generator(module, module_path(module, root).read_bytes()).run()


def module_path(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


# -- equivalent mutants ---------------------------------------------------------------------


@dataclass(frozen=True)
class Equivalent:
    """A survivor argued to change nothing observable (tools/mutation_equivalents.toml)."""

    module: str
    function: str
    mutation: str
    why: str


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    if not path.exists():
        return []
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Equivalent(e["module"], e["function"], e["mutation"], e["why"])
            for e in table.get("equivalent", [])]


def is_equivalent(mutant: Mutant, equivalents: Sequence[Equivalent]) -> Equivalent | None:
    for e in equivalents:
        if (e.module, e.function, e.mutation) == (mutant.module, mutant.function,
                                                   mutant.description):
            return e
    return None


# -- running --------------------------------------------------------------------------------

PRELOADED = ("numpy", "torch", "hypothesis", "pytest", "cryptography", "openskill.models",
             "eth_abi", "eth_utils")
"""Third-party packages the forking runner imports once, before forking a child per mutant
(about half of a test run's time is importing them). Nothing of the repository is imported in
the parent, so every child imports the module under test afresh."""


class _MutantFinder(importlib.abc.MetaPathFinder):
    """Imports ``name`` from ``path`` (the mutated copy) instead of the source tree."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path)


class _HypothesisProfile:
    """Reproducible property tests that write nothing: no example database, fixed examples."""

    def pytest_configure(self, config: object) -> None:
        from hypothesis import settings

        settings.register_profile("mutation", deadline=None, database=None, derandomize=True,
                                  print_blob=False)
        settings.load_profile("mutation")


def _run_pytest(root: str, name: str, path: str, args: Sequence[str]) -> int:
    """In a child: import ``name`` from ``path`` ("-": the source tree) and run pytest."""
    sys.dont_write_bytecode = True
    os.chdir(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    if path != "-":
        sys.meta_path.insert(0, _MutantFinder(name, path))
    import pytest

    return int(pytest.main(list(args), plugins=[_HypothesisProfile()]))


def pytest_args(tests: Sequence[str]) -> list[str]:
    return ["-x", "-q", "--no-header", "-p", "no:cacheprovider", *tests]


class Runner:
    """Runs a module's tests against one mutant at a time, each in its own process group."""

    def __init__(self, fork: bool, root: Path = ROOT) -> None:
        self.root = root
        self.fork = fork and hasattr(os, "fork")
        if self.fork:
            for name in PRELOADED:
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)

    def run(self, module: str, mutant_path: str, tests: Sequence[str], timeout: float
            ) -> tuple[str, float]:
        """(status, seconds): caught, timeout, survived or "error ..."."""
        started = time.monotonic()
        pid = self._fork(module, mutant_path, tests) if self.fork else self._spawn(
            module, mutant_path, tests)
        try:
            rc = self._wait(pid, started + timeout)
        except BaseException:
            _kill_group(pid)
            raise
        seconds = time.monotonic() - started
        if rc is None:
            return "timeout", seconds
        if rc == 0:
            return "survived", seconds
        if rc in (1, 2):  # tests failed, or collection failed (the mutant broke an import)
            return "caught", seconds
        return f"error (exit {rc})", seconds

    def _fork(self, module: str, mutant_path: str, tests: Sequence[str]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 3
            try:
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                code = _run_pytest(str(self.root), module, mutant_path, pytest_args(tests))
            finally:
                os._exit(code)
        return pid

    def _spawn(self, module: str, mutant_path: str, tests: Sequence[str]) -> int:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), str(self.root), env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.mutate", "--child", str(self.root), module, mutant_path,
             *pytest_args(tests)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        return proc.pid

    @staticmethod
    def _wait(pid: int, deadline: float) -> int | None:
        """The exit code, or None (and the group killed) once ``deadline`` passes."""
        delay = 0.01
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                _kill_group(pid)
                return None
            time.sleep(delay)
            delay = min(0.1, delay * 2)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # caught, timeout, survived, equivalent, error ...
    seconds: float
    why: str = ""


def mutate_module(module: str, tests: Sequence[str], equivalents: Sequence[Equivalent],
                  runner: Runner, timeout: float | None, workdir: Path
                  ) -> tuple[list[Outcome], float]:
    """Runs every mutant of ``module``; returns the outcomes and the unmutated run's time."""
    path = module_path(module, runner.root)
    original = path.read_bytes()
    status, baseline = runner.run(module, "-", tests, timeout=900)
    if status != "survived":
        raise SystemExit(f"{module}: its tests do not pass unmutated ({status}): {tests}")
    limit = timeout if timeout is not None else max(20.0, 4.0 * baseline + 10.0)
    marks = {"caught": ".", "timeout": "T", "survived": "S", "equivalent": "e"}
    outcomes = []
    for n, mutant in enumerate(mutants_of(module, runner.root)):
        mutant_file = workdir / f"m{n}" / path.name
        mutant_file.parent.mkdir()
        mutated = mutant.apply(original)
        try:
            compile(mutated, str(path), "exec")
        except SyntaxError as exc:  # a bug of this tool, not of the module: say so
            outcomes.append(Outcome(mutant, "error", 0.0, f"mutant does not compile: {exc}"))
            print("E", end="", flush=True)
            continue
        mutant_file.write_bytes(mutated)
        status, seconds = runner.run(module, str(mutant_file), tests, limit)
        outcome = Outcome(mutant, status, seconds)
        found = is_equivalent(mutant, equivalents) if status == "survived" else None
        if found is not None:
            outcome = Outcome(mutant, "equivalent", seconds, found.why)
        outcomes.append(outcome)
        print(marks.get(outcome.status, "E"), end="", flush=True)
    print(flush=True)
    if path.read_bytes() != original:  # cannot happen: nothing writes it; checked anyway
        raise SystemExit(f"{path} changed during the run")
    return outcomes, baseline


@dataclass(frozen=True)
class Score:
    module: str
    mutants: int
    caught: int
    survived: int
    equivalent: int
    errors: int

    @property
    def score(self) -> float:
        """Caught, in percent of the mutants not argued equivalent."""
        live = self.mutants - self.equivalent - self.errors
        return 100.0 * self.caught / live if live else 100.0


def score_of(module: str, outcomes: Sequence[Outcome]) -> Score:
    counts = Counter("caught" if o.status == "timeout" else o.status.split(" ")[0]
                     for o in outcomes)
    return Score(module, len(outcomes), counts["caught"], counts["survived"],
                 counts["equivalent"], counts["error"])


def table(scores: Sequence[Score]) -> str:
    lines = [f"{'module':<24} {'mutants':>7} {'caught':>7} {'survived':>8} {'equiv.':>6} "
             f"{'score':>7}"]
    for s in scores:
        lines.append(f"{s.module:<24} {s.mutants:>7} {s.caught:>7} {s.survived:>8} "
                     f"{s.equivalent:>6} {s.score:>6.1f}%")
    return "\n".join(lines)


def report(results: dict[str, tuple[list[Outcome], float]],
           tests: dict[str, Sequence[str]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for module, (outcomes, baseline) in results.items():
        s = score_of(module, outcomes)
        out[module] = {
            "tests": list(tests[module]),
            "baseline_seconds": round(baseline, 2),
            **{k: v for k, v in dataclasses.asdict(s).items() if k != "module"},
            "score": round(s.score, 1),
            "results": [
                {"line": o.mutant.line, "function": o.mutant.function,
                 "mutation": o.mutant.description, "status": o.status,
                 "seconds": round(o.seconds, 2), **({"why": o.why} if o.why else {})}
                for o in outcomes
            ],
        }
    return out


def survivors(results: dict[str, tuple[list[Outcome], float]]) -> Iterator[str]:
    for module, (outcomes, _) in results.items():
        for o in outcomes:
            if o.status == "survived" or o.status.startswith("error"):
                m = o.mutant
                yield f"  {module}:{m.line} ({m.function}) {m.description}  [{o.status}]"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--child"]:  # the non-forking runner's child process
        root, name, path, *rest = args_list[1:]
        return _run_pytest(root, name, path, rest)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("modules", nargs="*",
                        help=f"dotted module names (default: the {len(TARGETS)} of TARGETS)")
    parser.add_argument("--tests", nargs="+", help="test files to run instead of TARGETS'")
    parser.add_argument("--timeout", type=float,
                        help="seconds per mutant (default: 4x the unmutated run + 10)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="report file")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--no-fork", action="store_true",
                        help="a fresh interpreter per mutant instead of a fork (slower)")
    args = parser.parse_args(args_list)
    modules = args.modules or list(TARGETS)
    for module in modules:
        if not module_path(module).is_file():
            parser.error(f"no module {module} under {ROOT}")
        if args.tests is None and module not in TARGETS:
            parser.error(f"{module} has no tests in TARGETS: name them with --tests")
    if args.list:
        for module in modules:
            for m in mutants_of(module):
                print(f"{module}:{m.line} ({m.function}) {m.description}")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the current mutant's tests too
    signal.signal(signal.SIGINT, _interrupt)  # even where a background job ignores Ctrl-C
    equivalents = load_equivalents()
    tests: dict[str, Sequence[str]] = {m: list(args.tests or TARGETS[m]) for m in modules}
    runner = Runner(fork=not args.no_fork)
    results: dict[str, tuple[list[Outcome], float]] = {}
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
            for module in modules:
                print(f"{module}: {len(mutants_of(module))} mutants, tests "
                      f"{' '.join(tests[module])}", flush=True)
                workdir = Path(tmp) / module
                workdir.mkdir()
                results[module] = mutate_module(module, tests[module], equivalents, runner,
                                                args.timeout, workdir)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted (the source tree is never modified)", file=sys.stderr)
    print(table([score_of(m, o) for m, (o, _) in results.items()]))
    left = list(survivors(results))
    if left:
        print("survivors not argued equivalent in tools/mutation_equivalents.toml:")
        print("\n".join(left))
    if results:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report(results, tests), indent=1) + "\n",
                             encoding="utf-8")
        print(f"report: {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
