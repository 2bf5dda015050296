"""HTTPS on both ports with a certificate from a test CA made here: the servers, the portal's
HSTS and Secure cookies, the SDK with the CA configured, and a chunked upload with ``curl``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from imsp.client import Client
from imsp.client.errors import ClientError
from imsp.clock import SystemClock
from imsp.config import Settings
from tests.exchange.builders import make_credential, records
from tests.support.live import RoleProcess, imsp_serve


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(where: Path) -> Pki:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("IMSP 测试 CA"))
        .issuer_name(_name("IMSP 测试 CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("imsp.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(where / "ca.pem", where / "server.pem", where / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


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
