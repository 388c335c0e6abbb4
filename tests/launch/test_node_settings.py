"""Node-local settings from code, environment and flags; the keystore password from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ConfigError
from seedswarm.launch.settings import NodeSettings, password_from, with_overrides


def _settings() -> NodeSettings:
    return NodeSettings(role="validator", network=Path("/n.toml"), keystore=Path("/k"),
                        state_dir=Path("/s"))


def test_environment_then_flags_override_settings_built_in_code() -> None:
    env = {"SEEDSWARM_METRICS_PORT": "9464", "SEEDSWARM_DASHBOARD_PORT": "8080",
           "SEEDSWARM_LOG_FORMAT": "json", "SEEDSWARM_HTTP_HOST": "0.0.0.0",
           "SEEDSWARM_STATE_DIR": "/elsewhere", "SEEDSWARM_PASSWORD": "x", "OTHER": "y"}
    settings = with_overrides(_settings(), flags={"dashboard_port": 8081, "log_format": None},
                              env=env)
    assert (settings.metrics_port, settings.dashboard_port) == (9464, 8081)
    assert (settings.log_format, settings.http_host) == ("json", "0.0.0.0")
    assert settings.state_dir == Path("/s")  # paths are the join command's own choice
    with pytest.raises(ConfigError, match="SEEDSWARM_METRICS_PORT: expected int"):
        with_overrides(_settings(), env={"SEEDSWARM_METRICS_PORT": "lots"})
    with pytest.raises(ConfigError, match="metrics_port must be a TCP port"):
        with_overrides(_settings(), flags={"metrics_port": 70_000})


def test_the_password_comes_from_the_variable_then_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret word\n", encoding="utf-8")
    assert password_from({"SEEDSWARM_PASSWORD_FILE": str(secret)}) == "s3cret word"
    assert password_from({"SEEDSWARM_PASSWORD": "direct",
                          "SEEDSWARM_PASSWORD_FILE": str(secret)}) == "direct"
    assert password_from({}) is None
    with pytest.raises(ConfigError, match=r"SEEDSWARM_PASSWORD_FILE=.*cannot read it"):
        password_from({"SEEDSWARM_PASSWORD_FILE": str(tmp_path / "missing")})
