"""The Java 17 client example printed in the spec (chapter 8), compiled with ``javac`` and run
against a live platform on loopback: token, chunked upload, token error → refresh and resend."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard import spec
from tests.client.builders import logged_codes, sample, stored
from tests.support.live import live_server

JAVAC = shutil.which("javac")
pytestmark = pytest.mark.skipif(
    JAVAC is None,
    reason="javac 不可用：scripts/install-system-deps.sh --dev 安装 openjdk-17-jdk-headless",
)
SOURCE = resources.files("imsp.standard.spec").joinpath("clients", "ImspClient.java")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("java")
    (out / "ImspClient.java").write_text(SOURCE.read_text("utf-8"), "utf-8")
    assert JAVAC is not None
    subprocess.run([JAVAC, "ImspClient.java"], cwd=out, check=True, timeout=180)
    return out


@pytest.fixture
def platform(settings: Settings, clock: FrozenClock) -> Iterator[str]:
    with live_server(create_exchange_app(settings, clock=clock)) as url:
        yield url


def run_java(classes: Path, *args: str) -> subprocess.CompletedProcess[str]:
    java = shutil.which("java")
    assert java is not None
    return subprocess.run(
        [java, "-cp", str(classes), "ImspClient", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_java_example_is_the_one_the_spec_prints() -> None:
    assert SOURCE.read_text("utf-8").strip() in spec.render_markdown()["9-clients.md"]


def test_java_client_gets_a_token_and_uploads_records(
    compiled: Path,
    platform: str,
    credential: IssuedCredential,
    settings: Settings,
    tmp_path: Path,
) -> None:
    records = sample("doctor", 3)
    body = tmp_path / "doctors.json"
    body.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    done = run_java(
        compiled, platform, credential.app_id, credential.app_secret, "uploadDoctor", str(body)
    )
    assert done.returncode == 0, done.stderr + done.stdout
    receipt = json.loads(done.stdout)
    assert receipt["data"]["success"] == 3 and receipt["data"]["standardVersion"] == "1.1"
    assert len(stored(settings, "doctor")) == 3


def test_java_client_refreshes_a_rejected_token_and_resends_once(
    compiled: Path,
    platform: str,
    credential: IssuedCredential,
    settings: Settings,
    tmp_path: Path,
) -> None:
    body = tmp_path / "patients.json"
    body.write_text(json.dumps(sample("patient", 2), ensure_ascii=False), "utf-8")
    done = run_java(
        compiled,
        platform,
        credential.app_id,
        credential.app_secret,
        "uploadPatientFile",
        str(body),
        "hbt_not-a-token",  # start with a token the platform rejects (40102)
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout)["data"]["success"] == 2
    codes = logged_codes(settings)
    assert codes.count(40102) == 1 and codes[-1] == 200  # rejected once, then resent and stored
    assert len(stored(settings, "patient")) == 2


def test_java_client_reports_wrong_credentials(
    compiled: Path, platform: str, credential: IssuedCredential, tmp_path: Path
) -> None:
    body = tmp_path / "one.json"
    body.write_text("[]", "utf-8")
    done = run_java(compiled, platform, credential.app_id, "wrong", "uploadDoctor", str(body))
    assert done.returncode != 0 and "获取访问令牌失败" in done.stderr
