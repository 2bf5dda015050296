"""Benchmark: video playback through the platform against fetching from the hospital directly.

    .venv/bin/python bench/bench_video.py [--mb 128] [--rounds 3] [--write]

What it does, on this machine over loopback (not a test):

1. writes a ``--mb`` MB file (random bytes: the platform passes bytes through and never parses
   them) and serves it with the reference hospital video service (``imsp.client.videoservice``)
   over HTTPS with a throw-away CA made by ``openssl``;
2. migrates a fresh SQLite database, registers the service for one institution and starts the
   real portal app under uvicorn on loopback (a thread of this process);
3. ``--rounds`` times each: GET the whole file directly from the hospital's playback URL, and GET
   it through the platform (``/video/stream/<lease>``, signed in as a regulator) — reading with
   httpx in 1 MB chunks and checking the SHA-256; then 200 random 1 MB Range requests through the
   platform (what a media element does when seeking);
4. reports MB/s (median of the rounds), the Range requests' median and p95 latency, and the growth
   of this process's resident set (sampled every 5 ms) during the streamed downloads — which stays far below the file size
   because the platform streams chunk by chunk and never holds the whole file;
5. with ``--write`` puts the figures into ``docs/performance.md`` (its section
   "视频调阅 / Video playback" only).

Everything runs in one process on a 2-core machine shared with other work: client, platform and
hospital compete for the same cores, so compare the two paths measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.live import live_server  # noqa: E402

from imsp.app import create_portal_app  # noqa: E402
from imsp.auth import service as auth  # noqa: E402
from imsp.client import videoservice as vs  # noqa: E402
from imsp.config import Settings  # noqa: E402
from imsp.storage import migrate  # noqa: E402
from imsp.storage.db import Database  # noqa: E402
from imsp.video import service  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
SECTION = "## 视频调阅 / Video playback"
CHUNK = 1 << 20


def _pki(where: Path) -> tuple[Path, Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = where / "ca.pem", where / "ca.key"
    cert, key, csr, ext = where / "s.pem", where / "s.key", where / "s.csr", where / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=bench CA", "-keyout", str(ca_key),
            "-out", str(ca))  # fmt: skip
    openssl("req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def _download(client: httpx.Client, url: str, **kw: object) -> tuple[float, str, int]:
    h, n = hashlib.sha256(), 0
    t = time.perf_counter()
    with client.stream("GET", url, **kw) as r:  # type: ignore[arg-type]
        r.raise_for_status()
        for chunk in r.iter_bytes(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return time.perf_counter() - t, h.hexdigest(), n


def _rss_mb() -> float:
    """This process's current resident set (``/proc/self/statm``), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / CHUNK


class RssSampler:
    """The largest resident set seen while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        video = where / "big.mp4"
        with video.open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(CHUNK))
        (where / "index.json").write_text(json.dumps([{"file": "big.mp4", "videoId": "BIG",
                                          "visitNo": "GH1", "duration": 600}]))  # fmt: skip
        recordings = vs.load_recordings(where, where / "index.json")
        ca, cert, key = _pki(where)
        config = vs.ServiceConfig("bench", "bench-secret", recordings)
        hospital = vs.VideoServer(("127.0.0.1", 0), config, tls=vs.tls_context(cert, key))
        threading.Thread(target=hospital.serve_forever, daemon=True).start()

        settings = Settings(data_dir=where / "var", database_url=f"sqlite:///{where / 'b.db'}")
        migrate.upgrade(settings)

        async def seed() -> None:
            db = Database(settings)
            async with db.session() as s:
                now = dt.datetime.now(dt.UTC)
                inst = await auth.ensure_institution(s, org_code="12130000MB1A2B3C4R",
                                                     name="基准医院", now=now)  # fmt: skip
                op = await auth.create_portal_user(s, username="op", password="Passw0rd-123",
                                                   role="operator", now=now,
                                                   must_change_password=False)  # fmt: skip
                await auth.create_portal_user(s, username="reg", password="Passw0rd-123",
                                              role="regulator", now=now,
                                              must_change_password=False)  # fmt: skip
                await service.register_endpoint(
                    s, settings=settings, institution_id=inst.id, base_url=hospital.url,
                    app_id="bench", app_secret="bench-secret", ca_bundle=ca.read_text(),
                    actor=service.Viewer(op.id, "op", "operator", None), now=now,
                )  # fmt: skip
            await db.dispose()

        asyncio.run(seed())
        direct_rates, platform_rates, rss_growth, latencies = [], [], [], []
        with (
            live_server(create_portal_app(settings)) as base,
            httpx.Client(base_url=base, timeout=60) as web,
            httpx.Client(verify=str(ca), timeout=60) as direct,
        ):
            page = web.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert csrf
            web.post("/login", data={"username": "reg", "password": "Passw0rd-123",
                                     "csrf_token": csrf.group(1)})  # fmt: skip
            found = web.get("/video/search", params={"org": "12130000MB1A2B3C4R", "visitNo": "GH1"})
            lease = re.search(r"/video/watch/([\w-]+)", found.text)
            assert lease, found.text
            stream = f"/video/stream/{lease.group(1)}"
            token = direct.get(hospital.url + "/auth/accesstoken/create",
                               params={"appId": "bench", "appSecret": "bench-secret"})  # fmt: skip
            answer = direct.get(hospital.url + "/video/query", params={"visitNo": "GH1"},
                                headers={"accessToken": token.json()["data"]["accessToken"]})  # fmt: skip
            play_url = answer.json()["data"]["videos"][0]["playUrl"]
            size = recordings[0].size
            for _ in range(args.rounds):
                secs, digest, n = _download(direct, play_url)
                assert digest == recordings[0].sha256 and n == size
                direct_rates.append(size / secs / CHUNK)
                before = _rss_mb()
                with RssSampler() as rss:
                    secs, digest, n = _download(web, stream)
                assert digest == recordings[0].sha256 and n == size
                platform_rates.append(size / secs / CHUNK)
                rss_growth.append(rss.peak - before)
            rng = random.Random(1)
            for _ in range(200):
                start = rng.randrange(0, size - CHUNK)
                t = time.perf_counter()
                r = web.get(stream, headers={"Range": f"bytes={start}-{start + CHUNK - 1}"})
                latencies.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 206 and len(r.content) == CHUNK
        hospital.shutdown()

    latencies.sort()
    result = {
        "direct": statistics.median(direct_rates),
        "platform": statistics.median(platform_rates),
        "rss": max(rss_growth),
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }
    cmd = f".venv/bin/python bench/bench_video.py --mb {args.mb} --rounds {args.rounds}"
    lines = [
        SECTION,
        "",
        f"命令 / command: `{cmd}` — {dt.date.today().isoformat()}, {platform.machine()}, "
        f"{os.cpu_count()} 核, Python {platform.python_version()}；方法见脚本文档字符串。",
        "",
        "| 指标 / figure | 值 / value |",
        "|---|---|",
        f"| 直接从医院服务下载 {args.mb} MB（HTTPS，1 MB 分块读） | {result['direct']:.0f} MB/s |",
        f"| 经平台 `/video/stream` 下载同一文件（HTTPS 到医院 + HTTP 到浏览器） | {result['platform']:.0f} MB/s |",
        f"| 经平台下载期间本进程 RSS 的最大增长（每 5 ms 采样；文件 {args.mb} MB） | {result['rss']:.1f} MB |",
        f"| 经平台的 1 MB Range 请求，200 次随机位置，中位数 / p95 | {result['p50']:.1f} / {result['p95']:.1f} ms |",
        "",
        "客户端、平台与医院服务在同一进程、同一台 2 核机器上互相争用 CPU；比较同一次运行中的两条路径。"
        "RSS 的最大增长远小于文件大小，说明平台逐块转发而不先下载整个文件。",
        "",
    ]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = DOC.read_text("utf-8")
        if SECTION in doc:
            head, _, rest = doc.partition(SECTION)
            tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
            doc = head + text + ("\n" + tail if tail else "")
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        DOC.write_text(doc, "utf-8")


if __name__ == "__main__":
    main()
