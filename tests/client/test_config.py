"""Connection settings: flags beat the environment, which beats the config file, which beats defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from imsp.client import ConfigurationError
from imsp.client.config import ClientConfig


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "client.toml"
    path.write_text(
        'base_url = "http://file:8888"\napp_id = "file-app"\napp_secret = "file-secret"\n'
        "batch_size = 100\n",
        "utf-8",
    )
    return path


def test_flags_beat_environment_beat_file_beat_defaults(config_file: Path) -> None:
    env = {"IMSP_CLIENT_APP_ID": "env-app", "IMSP_CLIENT_BASE_URL": "http://env:8888"}
    cfg = ClientConfig.load(
        flags={"base_url": "http://flag:8888", "app_id": None},
        config_file=config_file,
        environ=env,
    )
    assert cfg.base_url == "http://flag:8888"  # flag
    assert cfg.app_id == "env-app"  # environment
    assert cfg.app_secret == "file-secret"  # file
    assert cfg.batch_size == 100 and cfg.retries == 5  # file, default
    assert cfg.source == str(config_file)


def test_config_file_is_found_through_the_environment_or_xdg(
    config_file: Path, tmp_path: Path
) -> None:
    assert ClientConfig.load(environ={"IMSP_CLIENT_CONFIG": str(config_file)}).app_id == "file-app"
    xdg = tmp_path / "xdg"
    (xdg / "imsp").mkdir(parents=True)
    config_file.rename(xdg / "imsp" / "client.toml")
    assert ClientConfig.load(environ={"XDG_CONFIG_HOME": str(xdg)}).app_id == "file-app"


def test_an_explicit_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="不存在"):
        ClientConfig.load(config_file=tmp_path / "nope.toml", environ={})


def test_numbers_from_the_environment_are_typed(tmp_path: Path) -> None:
    cfg = ClientConfig.load(
        environ={
            "XDG_CONFIG_HOME": str(tmp_path),
            "IMSP_CLIENT_TIMEOUT": "2.5",
            "IMSP_CLIENT_RETRIES": "0",
        }
    )
    assert cfg.timeout == 2.5 and cfg.retries == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [("nonsense = 1\n", "未知配置项"), ('retries = "many"\n', "retries"), ("= broken", "无法读取")],
)
def test_bad_config_file_is_reported_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, "utf-8")
    with pytest.raises(ConfigurationError, match=message):
        ClientConfig.load(config_file=path, environ={})


def test_missing_connection_settings_name_their_flag_and_variable(tmp_path: Path) -> None:
    cfg = ClientConfig.load(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="IMSP_CLIENT_APP_SECRET"):
        cfg.require_connection()
