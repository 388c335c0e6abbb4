"""`seedswarm keys new|show` through typer's CliRunner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adapters.storage.keystore import KEYSTORE_FILENAME, decrypt_keystore, read_keystore_info
from seedswarm.commands.keys import PASSWORD_ENV, register

FAST = ["--scrypt-log-n", "6"]  # hidden option: cheap KDF for tests only
PASSWORD = "s3cret password"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return CliRunner()


def test_new_then_show_round_trip(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "node"
    created = runner.invoke(app, ["keys", "new", "--out", str(out), *FAST])
    assert created.exit_code == 0, created.output
    keystore = out / KEYSTORE_FILENAME
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    bundle = decrypt_keystore(keystore.read_text(), PASSWORD)
    assert bundle.peer_id in created.output

    shown = runner.invoke(app, ["keys", "show", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.stdout)
    assert summary["peer_id"] == bundle.peer_id
    assert summary["evm_address"] == bundle.evm_address

    table = runner.invoke(app, ["keys", "show", str(out)])
    assert table.exit_code == 0
    assert bundle.peer_id in table.output and bundle.evm_address in table.output


def test_wrong_password_fails_cleanly(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["keys", "new", "--out", str(tmp_path), *FAST]).exit_code == 0
    monkeypatch.setenv(PASSWORD_ENV, "not the password")
    result = runner.invoke(app, ["keys", "show", str(tmp_path)])
    assert result.exit_code != 0
    assert "wrong password" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_refuses_to_overwrite_without_force(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["keys", "new", "--out", str(tmp_path), *FAST]).exit_code == 0
    keystore = tmp_path / KEYSTORE_FILENAME
    before = keystore.read_text()
    refused = runner.invoke(app, ["keys", "new", "--out", str(tmp_path), *FAST])
    assert refused.exit_code == 1
    assert "--force" in refused.output
    assert keystore.read_text() == before
    forced = runner.invoke(app, ["keys", "new", "--out", str(tmp_path), "--force", *FAST])
    assert forced.exit_code == 0
    assert read_keystore_info(keystore.read_text()).peer_id != read_keystore_info(before).peer_id


def test_interactive_password_with_confirmation(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "new", "--out", str(tmp_path), *FAST], input="pw1\npw1\n")
    assert created.exit_code == 0, created.output
    assert decrypt_keystore((tmp_path / KEYSTORE_FILENAME).read_text(), "pw1")
    shown = runner.invoke(app, ["keys", "show", str(tmp_path), "--json"], input="pw1\n")
    assert shown.exit_code == 0, shown.output


def test_show_missing_keystore(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "show", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no keystore" in result.output and "Traceback" not in result.output


def test_default_cost_is_written(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["keys", "new", "--out", str(tmp_path)]).exit_code == 0
    assert read_keystore_info((tmp_path / KEYSTORE_FILENAME).read_text()).scrypt.n == 2**17


def test_registered_in_the_real_cli() -> None:
    from seedswarm.cli import app

    result = CliRunner().invoke(app, ["keys", "--help"])
    assert result.exit_code == 0
    assert "new" in result.output and "show" in result.output
