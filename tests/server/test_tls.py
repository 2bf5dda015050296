"""HTTPS on both ports with a certificate from a test CA made here: the servers, the portal's
HSTS and Secure cookies, the SDK with the CA configured, and a chunked upload with ``curl``."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from cryptography import x509

from imsp.client import Client
from imsp.client.errors import ClientError
from imsp.clock import SystemClock
from imsp.config import Settings
from tests.exchange.builders import make_credential, records
from tests.support.live import RoleProcess, imsp_serve
from tests.support.pki import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def _with_tls(settings: Settings, pki: Pki) -> Settings:
    return settings.model_copy(update={"tls_cert_file": pki.cert, "tls_key_file": pki.key})


def test_both_servers_speak_https_with_hsts_and_secure_cookies_and_the_sdk_uploads(
    settings: Settings, pki: Pki
) -> None:
    tls = _with_tls(settings, pki)
    cred = make_credential(settings, SystemClock())
    trust = ssl.create_default_context(cafile=str(pki.ca))
    with imsp_serve(tls) as (exchange, portal):
        assert exchange.startswith("https://") and portal.startswith("https://")
        with httpx.Client(verify=trust, timeout=10) as http:
            assert http.get(f"{exchange}/healthz").json()["service"] == "exchange"
            assert http.get(f"{exchange}/readyz").status_code == 200
            login = http.get(f"{portal}/login")
            assert login.status_code == 200
            assert login.headers["strict-transport-security"].startswith("max-age=")
            cookies = login.headers.get_list("set-cookie")
            assert cookies and all("secure" in c.lower() for c in cookies), cookies
        # the port speaks TLS only: a plain HTTP request gets no answer
        with pytest.raises(httpx.HTTPError):
            httpx.get(exchange.replace("https://", "http://") + "/healthz", timeout=5)
        # a client that does not trust the CA is refused by its own certificate check
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{exchange}/healthz", timeout=5)

        # the SDK, with the platform's CA configured
        with Client(exchange, cred.app_id, cred.app_secret, ca_file=str(pki.ca)) as sdk:
            receipt = sdk.upload("prescription", records("prescription", 4))
        assert receipt.success == 4 and not receipt.rejected
        with (
            pytest.raises(ClientError),
            Client(exchange, cred.app_id, cred.app_secret, retries=0) as untrusting,
        ):
            untrusting.upload("prescription", records("prescription", 1))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_chunked_upload_over_tls_with_curl_to_the_exchange_role(
    settings: Settings, pki: Pki, tmp_path: Path
) -> None:
    tls = _with_tls(settings, pki)
    cred = make_credential(settings, SystemClock())
    body = tmp_path / "batch.json"
    body.write_bytes(orjson.dumps(records("prescription", 20)))
    with RoleProcess(tls, "exchange", "--workers", "2") as node:
        assert node.url.startswith("https://127.0.0.1:")
        token = httpx.get(
            f"{node.url}/auth/accesstoken/create",
            params={"appId": cred.app_id, "appSecret": cred.app_secret},
            verify=ssl.create_default_context(cafile=str(pki.ca)),
            timeout=10,
        ).json()["data"]["accessToken"]
        curl = [
            "curl", "--silent", "--show-error", "--http1.1", "--cacert", str(pki.ca),
            "-H", "Content-Type: application/json", "-H", f"accessToken: {token}",
            "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{body}",
            "--write-out", "\n%{http_code} %{scheme}", f"{node.url}/uploadPrescriptionInfo",
        ]  # fmt: skip
        done = subprocess.run(curl, capture_output=True, text=True, timeout=60, check=False)
        _, err = node.stop()
    assert done.returncode == 0, done.stderr
    answer, _, status = done.stdout.rpartition("\n")
    assert status.upper() == "200 HTTPS"
    receipt = orjson.loads(answer)
    assert receipt["code"] == 200
    assert [r["msgCode"] for r in receipt["data"]["results"]] == [200] * 20
    assert node.proc.returncode == 0, err


def _served_serial(url: str, ca: Path) -> int:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.slow
def test_sighup_replaces_the_processes_one_by_one_and_reads_a_renewed_certificate(
    settings: Settings, pki: Pki, tmp_path: Path
) -> None:
    tls = _with_tls(settings, pki)
    with RoleProcess(tls, "portal", "--workers", "2") as node:
        before = _served_serial(node.url, pki.ca)
        old = set(node.children())
        assert len(old) == 2
        (tmp_path / "renewed").mkdir()
        renewed = make_pki(tmp_path / "renewed")  # a new CA too: trust both while rotating
        bundle = tmp_path / "both.pem"
        bundle.write_bytes(pki.ca.read_bytes() + renewed.ca.read_bytes())
        pki.cert.write_bytes(renewed.cert.read_bytes())
        pki.key.write_bytes(renewed.key.read_bytes())
        node.proc.send_signal(signal.SIGHUP)
        failures = 0
        with httpx.Client(verify=ssl.create_default_context(cafile=str(bundle)), timeout=10) as h:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:  # the port answers throughout the replacement
                    assert h.get(f"{node.url}/healthz").status_code == 200
                except httpx.TransportError:
                    failures += 1
                now = set(node.children())
                if len(now) == 2 and not now & old:
                    break
                time.sleep(0.05)
        assert not set(node.children()) & old, "the old processes were not replaced"
        assert failures == 0
        after = _served_serial(node.url, renewed.ca)
        _, err = node.stop()
    assert after != before
    assert node.proc.returncode == 0, err
