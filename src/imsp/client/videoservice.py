"""The reference hospital video service (参考实现): MP4 files served under the video protocol.

``imsp video serve --dir DIR`` gives a hospital a working starting point and gives our own tests a
real peer. It implements :mod:`imsp.standard.video` exactly: the token service, ``/video/query`` by
any of the three indexes, and short-lived signed playback URLs that honour HTTP Range. Only the
standard library (``http.server``, ``ssl``): the hospital kit installs without the server extra.

Which consultation a file belongs to comes from an index file (JSON array, one object per video:
``file``, ``visitNo``, ``patientName``, ``idCardNo``, ``doctorName``, ``startTime``, ``endTime`` …);
without one, every ``*.mp4`` of the directory is a video whose visit number is the file name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, urlsplit

from imsp.standard import video as P


@dataclass(frozen=True, slots=True)
class Recording:
    """One video of one consultation."""

    video_id: str
    path: Path
    visit_no: str
    patient_name: str = ""
    id_card_no: str = ""
    doctor_name: str = ""
    doctor_id: str = ""
    start_time: str = ""
    end_time: str = ""
    duration: float = 0.0
    size: int = 0
    sha256: str = ""


def mp4_duration(path: Path) -> float:
    """Seconds from the movie header (``moov/mvhd``) of an MP4 file; 0.0 if it has none."""
    with path.open("rb") as f:
        for kind, start, size in _boxes(f, 0, path.stat().st_size):
            if kind != b"moov":
                continue
            for inner, at, _ in _boxes(f, start, start + size):
                if inner != b"mvhd":
                    continue
                f.seek(at)
                version = f.read(1)[0]
                f.seek(at + 4 + (16 if version == 1 else 8))
                if version == 1:
                    scale, length = struct.unpack(">IQ", f.read(12))
                else:
                    scale, length = struct.unpack(">II", f.read(8))
                return round(length / scale, 3) if scale else 0.0
    return 0.0


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload size) of the ISO-BMFF boxes between ``start`` and ``end``."""
    at = start
    while at + 8 <= end:
        f.seek(at)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
            header = 16
        elif size == 0:
            size = end - at
        if size < header:
            return
        yield kind, at + header, size - header
        at += size


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_recordings(directory: Path, index: Path | None = None) -> list[Recording]:
    """The videos of ``directory`` described by ``index`` (or one per ``*.mp4`` file)."""
    entries: list[dict[str, Any]]
    if index is not None:
        entries = json.loads(index.read_text("utf-8"))
        if not isinstance(entries, list):
            raise ValueError("索引文件须为 JSON 数组")
    else:
        entries = [
            {"file": p.name, "visitNo": p.stem, "videoId": p.stem}
            for p in sorted(directory.glob("*.mp4"))
        ]
    out = []
    for n, e in enumerate(entries, 1):
        path = (directory / str(e["file"])).resolve()
        if directory.resolve() not in path.parents or not path.is_file():
            raise ValueError(f"索引第 {n} 项：文件 {e['file']} 不在视频目录中")
        out.append(
            Recording(
                video_id=str(e.get("videoId") or f"V{n:06d}"),
                path=path,
                visit_no=str(e.get("visitNo", "")),
                patient_name=str(e.get("patientName", "")),
                id_card_no=str(e.get("idCardNo", "")),
                doctor_name=str(e.get("doctorName", "")),
                doctor_id=str(e.get("doctorId", "")),
                start_time=str(e.get("startTime", "")),
                end_time=str(e.get("endTime", "")),
                duration=float(e.get("duration") or mp4_duration(path)),
                size=path.stat().st_size,
                sha256=file_digest(path),
            )
        )
    return out


@dataclass
class ServiceConfig:
    app_id: str
    app_secret: str
    recordings: list[Recording]
    token_ttl: int = 7200
    url_ttl: int = 300
    max_concurrent: int = 8
    clock: Callable[[], float] = time.time
    url_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))


class VideoServer(ThreadingHTTPServer):
    """The service; ``serve_forever()`` in a thread, ``shutdown()`` to stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        config: ServiceConfig,
        *,
        tls: ssl.SSLContext | None = None,
        handler: type[BaseHTTPRequestHandler] | None = None,
    ) -> None:
        super().__init__(address, handler or VideoHandler)
        self.config = config
        self.tokens: dict[str, float] = {}
        self.lock = threading.Lock()
        self.busy = threading.BoundedSemaphore(config.max_concurrent)
        self.tls = tls
        if tls is not None:
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def issue_token(self) -> tuple[str, int]:
        token = "vt_" + secrets.token_urlsafe(32)
        with self.lock:
            now = self.config.clock()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + self.config.token_ttl
        return token, self.config.token_ttl

    def token_code(self, token: str | None) -> int:
        if not token:
            return P.TOKEN_MISSING
        with self.lock:
            expiry = next(
                (e for t, e in self.tokens.items() if hmac.compare_digest(t, token)), None
            )
        if expiry is None:
            return P.TOKEN_INVALID
        return P.OK if expiry > self.config.clock() else P.TOKEN_EXPIRED

    def signature(self, video_id: str, expires: int) -> str:
        msg = f"{video_id}:{expires}".encode()
        return hmac.new(self.config.url_key, msg, hashlib.sha256).hexdigest()


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class VideoHandler(BaseHTTPRequestHandler):
    """Routes of the protocol. Subclass and override a method to make a deliberately broken peer."""

    server: VideoServer
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # quiet; the CLI prints a start line
        pass

    # -- plumbing

    def send_json(
        self, code: int, data: Any = None, *, headers: dict[str, str] | None = None
    ) -> None:
        entry = P.CODES[code]
        body = json.dumps(
            {"code": code, "msg": entry.msg, "data": data}, ensure_ascii=False
        ).encode("utf-8")
        self.send_response(entry.http_status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == P.TOKEN_PATH:
                self.token(params)
            elif url.path == P.QUERY_PATH:
                self.query(params)
            elif url.path.startswith("/video/play/"):
                self.play(url.path.removeprefix("/video/play/"), params)
            else:
                self.send_json(P.BAD_PARAMS)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_HEAD = do_GET

    # -- the protocol

    def token(self, params: dict[str, str]) -> None:
        cfg = self.server.config
        if params.get("appId") != cfg.app_id:
            self.send_json(P.UNKNOWN_APP)
            return
        if not hmac.compare_digest(params.get("appSecret", "").encode(), cfg.app_secret.encode()):
            self.send_json(P.SECRET_MISMATCH)
            return
        token, ttl = self.server.issue_token()
        self.send_json(P.OK, {"accessToken": token, "expiresIn": ttl})

    def query(self, params: dict[str, str]) -> None:
        code = self.server.token_code(self.headers.get(P.TOKEN_HEADER))
        if code != P.OK:
            self.send_json(code)
            return
        if not self.server.busy.acquire(blocking=False):
            self.send_json(P.BUSY, headers={"Retry-After": "1"})
            return
        try:
            self._query(params)
        finally:
            self.server.busy.release()

    def _query(self, params: dict[str, str]) -> None:
        given = {k: params[k].strip() for k in P.INDEXES if params.get(k, "").strip()}
        try:
            start = _date(params.get(P.START_DATE))
            end = _date(params.get(P.END_DATE))
        except ValueError:
            self.send_json(P.BAD_PARAMS)
            return
        if not given:
            self.send_json(P.BAD_PARAMS)
            return
        found = [r for r in self.server.config.recordings if _matches(r, given, start, end)]
        if not found:
            self.send_json(P.UNKNOWN_INDEX)
            return
        if len(found) > P.MAX_RESULTS:
            self.send_json(P.TOO_MANY)
            return
        host = self.headers.get("Host") or self.server.url.split("://", 1)[1]
        base = f"{'https' if self.server.tls else 'http'}://{host}"
        ttl = min(self.server.config.url_ttl, P.MAX_URL_TTL_SECONDS)
        expires = int(self.server.config.clock()) + ttl
        patients: dict[tuple[str, str], list[str]] = {}
        for r in found:
            patients.setdefault((r.patient_name, r.id_card_no), []).append(r.visit_no)
        self.send_json(
            P.OK,
            {
                "total": len(found),
                "patients": [
                    {"patientName": n, "idCardNo": P.mask_id_card(i), "visitNos": v}
                    for (n, i), v in patients.items()
                ],
                "videos": [_video(r, base, expires, ttl, self.server) for r in found],
            },
        )

    def play(self, video_id: str, params: dict[str, str]) -> None:
        rec = next((r for r in self.server.config.recordings if r.video_id == video_id), None)
        expires = params.get("expires", "")
        sig = params.get("sig", "")
        if (
            rec is None
            or not expires.isdigit()
            or not hmac.compare_digest(sig, self.server.signature(video_id, int(expires)))
            or int(expires) < self.server.config.clock()
        ):
            self.send_json(P.URL_EXPIRED if rec is not None else P.VIDEO_GONE)
            return
        self.send_file(rec)

    def send_file(self, rec: Recording) -> None:
        size = rec.size
        first, last = 0, size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted:
            m = _RANGE.match(wanted.strip())
            if m is None or m.group(1) == m.group(2) == "":
                self.send_json(P.RANGE_INVALID, headers={"Content-Range": f"bytes */{size}"})
                return
            if m.group(1) == "":
                first = max(0, size - int(m.group(2)))
            else:
                first = int(m.group(1))
                last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if first >= size or first > last:
                self.send_json(P.RANGE_INVALID, headers={"Content-Range": f"bytes */{size}"})
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", P.MEDIA_TYPE)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with rec.path.open("rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(left, 64 * 1024))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def _date(value: str | None) -> datetime | None:
    return datetime.strptime(value, P.DATE_FORMAT) if value else None


def _matches(
    r: Recording, given: dict[str, str], start: datetime | None, end: datetime | None
) -> bool:
    if P.VISIT_NO in given and r.visit_no != given[P.VISIT_NO]:
        return False
    if P.ID_CARD_NO in given and r.id_card_no.upper() != given[P.ID_CARD_NO].upper():
        return False
    if P.PATIENT_NAME in given and r.patient_name != given[P.PATIENT_NAME]:
        return False
    if (start or end) and r.start_time:
        day = datetime.strptime(r.start_time[:10], P.DATE_FORMAT)
        if (start and day < start) or (end and day > end):
            return False
    return True


def _video(r: Recording, base: str, expires: int, ttl: int, server: VideoServer) -> dict[str, Any]:
    sig = server.signature(r.video_id, expires)
    return {
        "videoId": r.video_id,
        "visitNo": r.visit_no,
        "patientName": r.patient_name,
        "idCardNo": P.mask_id_card(r.id_card_no),
        "doctorName": r.doctor_name,
        "doctorId": r.doctor_id,
        "startTime": r.start_time,
        "endTime": r.end_time,
        "duration": r.duration,
        "format": "mp4",
        "size": r.size,
        "sha256": r.sha256,
        "playUrl": f"{base}/video/play/{quote(r.video_id)}?expires={expires}&sig={sig}",
        "playUrlExpiresIn": ttl,
    }


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


__all__ = [
    "Recording",
    "ServiceConfig",
    "VideoHandler",
    "VideoServer",
    "file_digest",
    "load_recordings",
    "mp4_duration",
    "tls_context",
]


def self_signed(state_dir: Path, hosts: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate for ``hosts`` in ``state_dir`` (made once with the ``openssl``
    command, kept for later starts). The platform registers the certificate as the CA bundle."""
    import ipaddress
    import subprocess

    cert, key = state_dir / "cert.pem", state_dir / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    state_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            names.append(f"IP:{h}")
        except ValueError:
            names.append(f"DNS:{h}")
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [  # noqa: S607 - the openssl found on PATH, as documented
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "825", "-subj", f"/CN={hosts[0]}", "-keyout", str(key),
            "-out", str(cert), "-addext", "subjectAltName=" + ",".join(names),
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key
