"""Bad configuration ends with one line and a non-zero exit — never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

IMSP = [sys.executable, "-m", "imsp.cli.main"]


def _run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("IMSP_")} | env
    return subprocess.run(IMSP + args, env=full, capture_output=True, text=True, timeout=timeout)


def test_unreachable_database_is_one_line_error(tmp_path: Path) -> None:
    r = _run(
        ["serve"],
        {
            "IMSP_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
            "IMSP_DATA_DIR": str(tmp_path),
        },
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "数据库无法连接" in lines[0] and "database unreachable" in lines[0]


def test_port_in_use_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _run(
            ["serve", "--migrate", "--exchange-port", str(port), "--portal-port", "0"],
            {"IMSP_DATA_DIR": str(tmp_path)},
        )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"{port}" in lines[0] and "无法监听" in lines[0]


def test_invalid_setting_names_the_variable(tmp_path: Path) -> None:
    r = _run(["serve"], {"IMSP_EXCHANGE__PORT": "eighty", "IMSP_DATA_DIR": str(tmp_path)})
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "IMSP_EXCHANGE__PORT" in r.stderr


def test_unmigrated_database_is_refused_without_migrate_flag(tmp_path: Path) -> None:
    r = _run(
        ["serve", "--exchange-port", "0", "--portal-port", "0"], {"IMSP_DATA_DIR": str(tmp_path)}
    )
    assert r.returncode != 0
    assert "imsp db upgrade" in r.stderr
