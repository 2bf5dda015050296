"""Builders for video tests: a real small MP4 (Debian's ffmpeg), a test CA and server certificates
(the openssl command), the reference video service on loopback over HTTPS, seeded accounts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth import service as auth
from imsp.auth.models import Institution
from imsp.client import videoservice as vs
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.video import service
from tests.qualification.builders import run

ORG = "12130000MB1A2B3C4R"
ORG_NAME = "河北省互联网医疗示范医院"
PASSWORD = "Passw0rd-123"
APP_ID, APP_SECRET = "platform-app", "vds_test-secret-0123456789abcdef"
VISIT = "GH20260105001"
VISIT2 = "GH20260105002"
PATIENT, ID_CARD = "张三", "130102198001011234"
PATIENT2_ID = "130102199002021238"


def make_mp4(path: Path, seconds: int = 3) -> Path:
    """A real MP4 (H.264 + AAC, faststart) made by ffmpeg: 160×120 test pattern and a tone."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (scripts/install-system-deps.sh --dev)")
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={seconds}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
         "-c:a", "aac", "-b:a", "32k", "-movflags", "+faststart", "-shortest", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the test CA's certificate (what the platform registers)
    cert: Path  # the server's certificate for 127.0.0.1, signed by the CA
    key: Path
    ca_pem: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(where: Path, name: str = "test") -> Pki:
    """A CA and a certificate for 127.0.0.1/localhost signed by it."""
    where.mkdir(parents=True, exist_ok=True)
    ca, ca_key = where / f"{name}-ca.pem", where / f"{name}-ca.key"
    cert, key, csr = where / f"{name}-server.pem", where / f"{name}-server.key", where / "s.csr"
    ext = where / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-days", "30", "-subj", f"/CN=IMSP {name} CA",
             "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    _openssl("req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return Pki(ca, cert, key, ca.read_text())


def library(where: Path) -> tuple[Path, Path]:
    """A video directory with two consultations of one patient and one of a namesake."""
    where.mkdir(parents=True, exist_ok=True)
    make_mp4(where / "a.mp4", 3)
    make_mp4(where / "b.mp4", 2)
    index = where / "index.json"
    index.write_text(
        json.dumps(
            [
                {"file": "a.mp4", "videoId": "VID-A", "visitNo": VISIT, "patientName": PATIENT,
                 "idCardNo": ID_CARD, "doctorName": "李医生", "startTime": "2026-01-05 09:00:00",
                 "endTime": "2026-01-05 09:10:00"},
                {"file": "b.mp4", "videoId": "VID-B", "visitNo": VISIT2, "patientName": PATIENT,
                 "idCardNo": PATIENT2_ID, "doctorName": "王医生",
                 "startTime": "2026-01-06 10:00:00", "endTime": "2026-01-06 10:05:00"},
            ],
            ensure_ascii=False,
        ),
        "utf-8",
    )  # fmt: skip
    return where, index


@contextmanager
def serving(
    recordings: list[vs.Recording],
    pki: Pki,
    *,
    handler: type[BaseHTTPRequestHandler] | None = None,
    url_ttl: int = 300,
    app_secret: str = APP_SECRET,
) -> Iterator[vs.VideoServer]:
    """The reference video service on a free loopback port over HTTPS, in a thread."""
    config = vs.ServiceConfig(APP_ID, app_secret, recordings, url_ttl=url_ttl)
    server = vs.VideoServer(
        ("127.0.0.1", 0), config, tls=vs.tls_context(pki.cert, pki.key), handler=handler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Seeded:
    institution_id: int
    org_code: str


def seed(
    settings: Settings,
    clock: FrozenClock,
    *,
    base_url: str,
    ca_pem: str,
    app_secret: str = APP_SECRET,
    users: tuple[str, ...] = ("regulator",),
) -> Seeded:
    """The institution, signed-in-ready users (``<role>1``, password ``PASSWORD``), and the
    institution's video service registered by the operator."""

    async def work(session: AsyncSession) -> Seeded:
        now = clock.now()
        inst = await auth.ensure_institution(session, org_code=ORG, name=ORG_NAME, now=now)
        op = await auth.create_portal_user(
            session, username="operator1", password=PASSWORD, role="operator", now=now,
            must_change_password=False,
        )  # fmt: skip
        for role in users:
            await auth.create_portal_user(
                session, username=f"{role}1", password=PASSWORD, role=role, now=now,
                must_change_password=False,
                institution=inst if role == "applicant" else None,
            )  # fmt: skip
        await service.register_endpoint(
            session, settings=settings, institution_id=inst.id, base_url=base_url,
            app_id=APP_ID, app_secret=app_secret, ca_bundle=ca_pem,
            actor=service.Viewer(op.id, op.username, op.role, None), now=now,
        )  # fmt: skip
        return Seeded(inst.id, inst.org_code)

    return run(settings, work)


def institution(settings: Settings) -> Institution:
    async def work(session: AsyncSession) -> Institution:
        from sqlalchemy import select

        inst = await session.scalar(select(Institution).where(Institution.org_code == ORG))
        assert inst is not None
        return inst

    return run(settings, work)
