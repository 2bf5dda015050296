"""The deployment files in ``deploy/`` are valid: HAProxy accepts its configurations, systemd its
units, and every unit starts a command ``imsp serve`` accepts."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from imsp.cli.server import serve
from imsp.config import ServerSettings
from tests.support.pki import make_pki

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
HAPROXY = sorted((DEPLOY / "haproxy").glob("*.cfg"))


def test_there_is_one_unit_per_role_and_two_haproxy_variants() -> None:
    assert [u.name for u in UNITS] == [
        "imsp-exchange.service",
        "imsp-portal.service",
        "imsp-worker.service",
    ]
    assert [h.name for h in HAPROXY] == ["haproxy-passthrough.cfg", "haproxy.cfg"]


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text("utf-8"))
    return parser


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_runs_its_role_and_stops_gracefully(path: Path) -> None:
    unit = _unit(path)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/imsp") and argv[1] == "serve"
    role = path.stem.removeprefix("imsp-")
    assert argv[2] == role
    serve.make_context("serve", argv[2:])  # the options parse (raises on a bad one)
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # SIGTERM to the parent only, which drains; systemd waits longer than the drain
    assert service["KillMode"] == "mixed"
    assert float(service["TimeoutStopSec"]) > ServerSettings().shutdown_seconds
    assert service["Restart"] == "on-failure"
    assert int(service["LimitNOFILE"]) >= 16384
    assert service["EnvironmentFile"] == "/etc/imsp/imsp.env"
    for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert hardening in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    imsp = shutil.which("imsp") or str(Path(__file__).resolve().parents[2] / ".venv/bin/imsp")
    for path in UNITS:  # ExecStart must name an executable that exists here
        text = path.read_text("utf-8").replace("/opt/imsp/venv/bin/imsp", imsp)
        (tmp_path / path.name).write_text(text, "utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / p.name) for p in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 even for unknown keys and bad values; it only warns on stderr
    problems = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert done.returncode == 0 and problems == [], done.stderr


@pytest.fixture(scope="module")
def haproxy_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    bundle = pki.cert.parent / "bundle.pem"
    bundle.write_bytes(pki.cert.read_bytes() + pki.key.read_bytes())
    return bundle


@pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="haproxy not installed (scripts/install-system-deps.sh --dev installs it)",
)
@pytest.mark.parametrize("path", HAPROXY, ids=lambda p: p.name)
def test_haproxy_accepts_the_configuration(path: Path, haproxy_pem: Path, tmp_path: Path) -> None:
    text = path.read_text("utf-8")
    # the certificate files it names must exist for the check: point them at a test one
    text = text.replace("/etc/haproxy/certs/imsp.pem", str(haproxy_pem))
    text = text.replace("/etc/haproxy/imsp-ca.pem", str(haproxy_pem))
    cfg = tmp_path / path.name
    cfg.write_text(text, "utf-8")
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/readyz" in text  # nodes leave the rotation while not ready


def test_haproxy_checks_every_node_on_readyz() -> None:
    for path in HAPROXY:
        text = path.read_text("utf-8")
        servers = [line for line in text.splitlines() if line.strip().startswith("server ")]
        assert len(servers) == 4, path.name  # two exchange nodes, two portal nodes
        assert all(line.rstrip().endswith("check") for line in servers)
        assert text.count("uri /readyz") == 2


def _setting_names() -> set[str]:
    from pydantic import BaseModel

    from imsp.config import Settings

    names = set()
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= {f"IMSP_{name.upper()}__{sub.upper()}" for sub in kind.model_fields}
        else:
            names.add(f"IMSP_{name.upper()}")
    return names


def test_the_example_environment_file_names_every_setting() -> None:
    text = (DEPLOY / "imsp.env.example").read_text("utf-8")
    given = {line.lstrip("#").split("=", 1)[0] for line in text.splitlines() if "=" in line}
    missing = sorted(_setting_names() - given)
    assert missing == [], f"add these to deploy/imsp.env.example with a Chinese comment: {missing}"
    assert sorted(n for n in given if n.startswith("IMSP_") and n not in _setting_names()) == []
