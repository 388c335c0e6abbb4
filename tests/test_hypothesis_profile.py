"""Property tests never depend on how fast the machine is."""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).resolve().parent


def test_the_loaded_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None


def _deadlines(source: str) -> list[str]:
    """``deadline=`` arguments other than None given to hypothesis's settings in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in (
                "settings", "register_profile"):
            for keyword in node.keywords:
                if keyword.arg == "deadline" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is None):
                    found.append(ast.unparse(keyword.value))
    return found


def test_no_test_sets_a_deadline() -> None:
    offenders = {str(path.relative_to(TESTS)): _deadlines(path.read_text(encoding="utf-8"))
                 for path in sorted(TESTS.rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scan_sees_a_deadline() -> None:
    assert _deadlines("settings(max_examples=5, deadline=200)") == ["200"]
    assert _deadlines("settings(deadline=timedelta(seconds=1))") == ["timedelta(seconds=1)"]
    assert _deadlines("hypothesis.settings.register_profile('x', deadline=1)") == ["1"]
    assert _deadlines("settings(deadline=None)") == []
    assert _deadlines("RoundWindow(round_index=5, opens_at=100.0, deadline=130.0)") == []
