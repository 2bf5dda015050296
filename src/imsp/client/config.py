"""Connection settings of the hospital side, from flags, the environment or a config file.

Precedence, highest first (each setting on its own):

1. command-line flags (``--base-url`` …);
2. the environment: ``IMSP_CLIENT_BASE_URL``, ``IMSP_CLIENT_APP_ID``, ``IMSP_CLIENT_APP_SECRET``,
   ``IMSP_CLIENT_ORG_CODE``, ``IMSP_CLIENT_OUTBOX``, ``IMSP_CLIENT_TIMEOUT``,
   ``IMSP_CLIENT_RETRIES``, ``IMSP_CLIENT_BATCH_SIZE``, ``IMSP_CLIENT_CA_FILE``;
3. the config file: ``--config FILE``, else ``IMSP_CLIENT_CONFIG``, else
   ``$XDG_CONFIG_HOME/imsp/client.toml`` (``~/.config/imsp/client.toml``; on Windows
   ``%APPDATA%\\imsp\\client.toml``) — TOML with the same names in lower case;
4. defaults.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from imsp.client.errors import ConfigurationError
from imsp.standard.demo import DEMO_ORG_CODE

ENV_PREFIX = "IMSP_CLIENT_"


def _config_home(env: Mapping[str, str]) -> Path:
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"])
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def _data_home() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    return _config_home(os.environ if env is None else env) / "imsp" / "client.toml"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    base_url: str = ""
    app_id: str = ""
    app_secret: str = field(default="", repr=False)
    org_code: str = DEMO_ORG_CODE  # institution of the credential, for sample data and selfcheck
    outbox: str = ""  # empty: <data home>/imsp/outbox.db
    timeout: float = 30.0
    retries: int = 5
    batch_size: int = 500
    ca_file: str = ""  # the platform's CA certificate (PEM) for HTTPS; empty: the system's CAs
    source: str = ""  # where the file settings came from (for messages)

    @property
    def outbox_path(self) -> Path:
        return (
            Path(self.outbox).expanduser() if self.outbox else _data_home() / "imsp" / "outbox.db"
        )

    def require_connection(self) -> None:
        missing = [
            f"{name}（--{name.replace('_', '-')} 或 {ENV_PREFIX}{name.upper()}）"
            for name in ("base_url", "app_id", "app_secret")
            if not getattr(self, name)
        ]
        if missing:
            raise ConfigurationError("缺少连接配置：" + "、".join(missing))

    @classmethod
    def load(
        cls,
        *,
        flags: Mapping[str, Any] | None = None,
        config_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Merge defaults ← file ← environment ← flags (``None`` flags are not given)."""
        env = os.environ if environ is None else environ
        explicit = config_file or env.get(ENV_PREFIX + "CONFIG")
        path = Path(explicit).expanduser() if explicit else default_config_path(env)
        cfg = cls()
        if path.is_file():
            cfg = replace(cfg, **_coerce(_read_toml(path), str(path)), source=str(path))
        elif explicit:
            raise ConfigurationError(f"配置文件不存在：{path}")
        from_env = {
            f.name: env[ENV_PREFIX + f.name.upper()]
            for f in fields(cls)
            if f.name != "source" and env.get(ENV_PREFIX + f.name.upper())
        }
        cfg = replace(cfg, **_coerce(from_env, "环境变量"))
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        return replace(cfg, **_coerce(given, "命令行参数"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"配置文件 {path} 无法读取：{exc}") from None


def _coerce(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(ClientConfig) if f.name != "source"}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        kind = types.get(name)
        if kind is None:
            raise ConfigurationError(f"{where}：未知配置项 {name}")
        try:
            if kind == "float":
                out[name] = float(value)
            elif kind == "int":
                out[name] = int(value)
            else:
                out[name] = str(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{where}：{name} 的值无效：{value!r}") from None
    return out
