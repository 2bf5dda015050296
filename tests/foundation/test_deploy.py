"""The deployment files in ``deploy/`` are valid: HAProxy accepts its configurations, systemd its
units, and every unit starts a command ``imsp serve`` accepts."""

from __future__ import annotations

import asyncio
import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from imsp.cli.server import serve
from imsp.config import ServerSettings, Settings
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


PROMETHEUS = DEPLOY / "prometheus"


def _targets(job: str) -> set[str]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text("utf-8"))
    (found,) = [j for j in config["scrape_configs"] if j["job_name"] == job]
    assert found["metrics_path"] == "/metrics"
    return {t for s in found["static_configs"] for t in s["targets"]}


def test_prometheus_scrapes_each_role_on_the_port_its_unit_serves() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text("utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/imsp-alerts.yml"]
    worker = shlex.split(_unit(DEPLOY / "systemd" / "imsp-worker.service")["Service"]["ExecStart"])
    ports = {
        "imsp-exchange": "8888",
        "imsp-portal": "8091",
        "imsp-worker": worker[worker.index("--health-port") + 1],
    }
    haproxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text("utf-8")
    for job, port in ports.items():
        targets = _targets(job)
        assert targets and {t.rsplit(":", 1)[1] for t in targets} == {port}, job
        if job != "imsp-worker":  # the nodes HAProxy balances are the ones scraped
            assert {f"{t} check" for t in targets} <= {
                " ".join(line.split()[2:]) for line in haproxy.splitlines() if "server " in line
            }, job
    # the public frontends never pass /metrics on
    assert haproxy.count("http-request deny deny_status 404 if { path /metrics }") == 2


def test_alert_rules_read_only_series_the_nodes_export(settings: Settings) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from imsp.app import create_exchange_app, create_health_app

    async def exported() -> set[str]:
        names: set[str] = set()
        for app in (create_exchange_app(settings), create_health_app(settings)):
            text = await app.state.metrics.exposition()
            await app.state.ctx.db.dispose()
            for family in text_string_to_metric_families(text.decode()):
                names |= {s.name for s in family.samples}
        return names

    names = asyncio.run(exported())
    rules = yaml.safe_load((PROMETHEUS / "imsp-alerts.yml").read_text("utf-8"))
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len(alerts) >= 8
    for rule in alerts:
        assert rule["alert"].startswith("IMSP") and rule["labels"]["severity"] in (
            "warning",
            "critical",
        )
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        used = set(re.findall(r"\bimsp_[a-z_]+", rule["expr"]))
        assert used <= names, (rule["alert"], used - names)
