"""The platform's client of one hospital's video service — careful with a peer it does not control.

* TLS verified against the institution's registered CA bundle (专网 often uses private CAs);
* connect/read timeouts and an overall deadline per request, so a slow or silent peer never hangs
  a page;
* JSON answers capped in size and required to be ``application/json``; video answers required to be
  ``video/mp4`` and never longer than they declared (an endless stream is cut);
* redirects are never followed, and the only URLs ever fetched are on the registered scheme, host
  and port — a playback URL elsewhere (another host, an internal address) is refused;
* a token error (``TOKEN_ERRORS``) makes it fetch a new token and resend once.

Every failure is a :class:`PeerError` with a stable ``kind`` and a Chinese message for the portal.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from imsp.config import VideoSettings
from imsp.standard import video as P

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PeerError(Exception):
    """The hospital's video service failed or misbehaved. ``kind`` is stable (audit, tests)."""

    def __init__(self, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.kind = kind
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered video service, with its secret decrypted for this use only."""

    base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    ca_bundle: str = ""

    @property
    def origin(self) -> tuple[str, str, int]:
        return origin_of(self.base_url)


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url`` — what must match for the platform to fetch it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """Verification against ``ca_bundle`` (PEM) only, or the system's CAs when it is empty."""
    if ca_bundle.strip():
        ctx = ssl.create_default_context(cadata=ca_bundle)
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class TokenCache:
    """Tokens of hospitals' services, per (base URL, appId), in this process."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, ep: Endpoint) -> str | None:
        hit = self._tokens.get((ep.base_url, ep.app_id))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    def put(self, ep: Endpoint, token: str, expires_in: int) -> None:
        self._tokens[(ep.base_url, ep.app_id)] = (token, time.monotonic() + max(0, expires_in - 30))

    def drop(self, ep: Endpoint) -> None:
        self._tokens.pop((ep.base_url, ep.app_id), None)


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    videos: list[dict[str, Any]]
    patients: list[dict[str, Any]]


@dataclass
class Upstream:
    """An open video answer: status and headers to pass on, and a capped body."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    served: int = 0
    overrun: bool = False  # the peer sent more than it declared (cut at the declared length)


def _transport_error(exc: Exception, s: VideoSettings) -> PeerError:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        return PeerError(
            "tls",
            "视频服务的证书未通过校验（与登记的 CA 证书不符、已过期或主机名不符），已拒绝连接",
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return PeerError("timeout", f"连接视频服务超时（{s.connect_timeout:g} 秒）")
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return PeerError("timeout", f"视频服务在 {s.read_timeout:g} 秒内没有应答，已放弃")
    if isinstance(exc, httpx.ConnectError):
        return PeerError("connect", "无法连接视频服务（地址不可达或拒绝连接）")
    return PeerError("transport", f"与视频服务通信失败：{type(exc).__name__}")


class VideoServiceClient:
    """Use as ``async with VideoServiceClient(ep, settings) as c: …``."""

    def __init__(
        self, endpoint: Endpoint, settings: VideoSettings, tokens: TokenCache | None = None
    ) -> None:
        self.ep = endpoint
        self.s = settings
        self.tokens = tokens or TokenCache()
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> VideoServiceClient:
        try:
            verify = tls_context(self.ep.ca_bundle)
        except (ssl.SSLError, ValueError) as exc:
            raise PeerError("ca", "登记的 CA 证书无法读取，请重新登记") from exc
        self._http = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(
                connect=self.s.connect_timeout,
                read=self.s.read_timeout,
                write=self.s.read_timeout,
                pool=self.s.connect_timeout,
            ),
            follow_redirects=False,
            trust_env=False,  # never a proxy from the environment
            limits=httpx.Limits(max_connections=4),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None, "use the client as an async context manager"
        return self._http

    # ------------------------------------------------------------------ guards

    def allowed(self, url: str) -> str:
        """``url`` if it is on the registered origin; otherwise a refusal."""
        parts = urlsplit(url)
        if parts.username or parts.password or origin_of(url) != self.ep.origin:
            where = f"{parts.scheme}://{parts.hostname or ''}" + (
                f":{parts.port}" if parts.port else ""
            )
            raise PeerError(
                "off_host",
                f"视频服务给出的地址 {where} 不在登记的主机上，平台拒绝访问（只访问登记的视频服务地址）",
            )
        return url

    def _redirect(self, r: httpx.Response) -> PeerError:
        target = r.headers.get("location", "")
        host = urlsplit(target).hostname or "同一主机"
        return PeerError(
            "redirect", f"视频服务返回重定向（HTTP {r.status_code}，指向 {host}），平台不跟随重定向"
        )

    # ------------------------------------------------------------------ JSON calls

    async def _get_json(
        self, path: str, params: Mapping[str, str], token: str | None = None
    ) -> dict[str, Any]:
        url = self.allowed(self.ep.base_url.rstrip("/") + path)
        headers = {P.TOKEN_HEADER: token} if token else {}
        try:
            async with asyncio.timeout(self.s.query_deadline):
                async with self.http.stream("GET", url, params=params, headers=headers) as r:
                    if r.is_redirect:
                        raise self._redirect(r)
                    ctype = r.headers.get("content-type", "")
                    if not ctype.startswith("application/json"):
                        raise PeerError(
                            "content_type",
                            f"视频服务的应答类型错误（HTTP {r.status_code}，Content-Type "
                            f"{ctype or '缺失'}，应为 application/json）",
                        )
                    body = await self._read_capped(r)
        except TimeoutError as exc:
            raise PeerError(
                "slow", f"视频服务应答过慢：{self.s.query_deadline:g} 秒内未完成，已放弃"
            ) from exc
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.s) from exc
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise PeerError("protocol", "视频服务的应答不是合法的 JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("code"), int):
            raise PeerError("protocol", "视频服务的应答缺少 code 节点")
        return data

    async def _read_capped(self, r: httpx.Response) -> bytes:
        limit = self.s.max_json_bytes
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PeerError("too_large", f"视频服务的应答过大（超过 {limit // 1024} KB），已拒绝")
        buf = bytearray()
        async for chunk in r.aiter_raw():
            buf += chunk
            if len(buf) > limit:
                raise PeerError(
                    "too_large", f"视频服务的应答过大（超过 {limit // 1024} KB），已中断"
                )
        return bytes(buf)

    async def token(self, *, refresh: bool = False) -> str:
        if not refresh and (hit := self.tokens.get(self.ep)):
            return hit
        body = await self._get_json(
            P.TOKEN_PATH, {"appId": self.ep.app_id, "appSecret": self.ep.app_secret}
        )
        data = body.get("data")
        if body["code"] != P.OK or not isinstance(data, dict):
            raise PeerError(
                "credentials",
                f"视频服务拒绝了平台的凭据：{body['code']} {body.get('msg', '')}（请核对登记的 appId/appSecret）",
            )
        token, ttl = data.get("accessToken"), data.get("expiresIn")
        if not isinstance(token, str) or not token or not isinstance(ttl, int):
            raise PeerError("protocol", "视频服务的令牌应答缺少 accessToken 或 expiresIn")
        self.tokens.put(self.ep, token, ttl)
        return token

    async def query(self, params: Mapping[str, str]) -> QueryAnswer:
        """``/video/query``; an unknown index is an empty answer, other refusals a PeerError."""
        body: dict[str, Any] = {}
        for attempt in range(2):
            body = await self._get_json(P.QUERY_PATH, params, await self.token(refresh=attempt > 0))
            if body["code"] not in P.TOKEN_ERRORS:
                break
            self.tokens.drop(self.ep)
        code = body["code"]
        if code == P.UNKNOWN_INDEX:
            return QueryAnswer([], [])
        if code != P.OK:
            known = P.CODES.get(code)
            kind = {P.TOO_MANY: "too_many", P.BUSY: "busy"}.get(code, "refused")
            msg = known.msg + "：" + known.hint if known else str(body.get("msg", ""))
            raise PeerError(kind, f"视频服务返回 {code}：{msg}")
        data = body.get("data")
        videos = data.get("videos") if isinstance(data, dict) else None
        if not isinstance(videos, list):
            raise PeerError("protocol", "视频服务的应答缺少 data.videos")
        if len(videos) > P.MAX_RESULTS:
            raise PeerError(
                "too_many", f"视频服务返回的视频超过 {P.MAX_RESULTS} 个，请增加检索条件"
            )
        for v in videos:
            self._check_video(v)
        patients = data.get("patients") if isinstance(data, dict) else None
        return QueryAnswer(videos, [p for p in patients or [] if isinstance(p, dict)])

    def _check_video(self, v: Any) -> None:
        if not isinstance(v, dict):
            raise PeerError("protocol", "data.videos 中有不是对象的项")
        missing = [n for n in ("videoId", "visitNo", "size", "sha256", "playUrl") if n not in v]
        if missing:
            raise PeerError("protocol", "视频缺少节点：" + "、".join(missing))
        if not isinstance(v["size"], int) or not 0 < v["size"] <= self.s.max_video_bytes:
            raise PeerError("too_large", f"视频 {v['videoId']} 的大小不合法或超过平台上限")
        if not isinstance(v["sha256"], str) or not _HEX64.match(v["sha256"]):
            raise PeerError("protocol", f"视频 {v['videoId']} 的 sha256 不是 64 位十六进制")
        if not isinstance(v["playUrl"], str):
            raise PeerError("protocol", f"视频 {v['videoId']} 的 playUrl 不是字符串")
        self.allowed(v["playUrl"])

    # ------------------------------------------------------------------ video bytes

    @asynccontextmanager
    async def open_video(
        self, url: str, *, size: int, range_header: str | None = None
    ) -> AsyncIterator[Upstream]:
        """The video at ``url`` (a playback URL of this service), with the browser's Range passed
        through. The body yields at most what the answer declared, and never more than ``size``."""
        self.allowed(url)
        headers = {"Range": range_header} if range_header else {}
        request = self.http.build_request("GET", url, headers=headers)
        try:
            async with asyncio.timeout(self.s.query_deadline):
                r = await self.http.send(request, stream=True)
        except TimeoutError as exc:
            raise PeerError("slow", "视频服务应答过慢，已放弃") from exc
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.s) from exc
        try:
            yield self._upstream(r, size)
        finally:
            await r.aclose()

    def _upstream(self, r: httpx.Response, size: int) -> Upstream:
        if r.is_redirect:
            raise self._redirect(r)
        ctype = r.headers.get("content-type", "")
        if r.status_code in (401, 403, 404) and ctype.startswith("application/json"):
            raise PeerError("url_expired", "播放地址已过期或无效")
        if r.status_code == 416:
            return Upstream(416, {"Content-Range": f"bytes */{size}"}, _nothing())
        if r.status_code not in (200, 206):
            raise PeerError("refused", f"视频服务拒绝播放（HTTP {r.status_code}）")
        if not ctype.startswith(P.MEDIA_TYPE):
            raise PeerError(
                "content_type",
                f"视频服务返回的不是 MP4 视频（Content-Type {ctype or '缺失'}，应为 {P.MEDIA_TYPE}）",
            )
        limit = size
        headers = {"Content-Type": P.MEDIA_TYPE, "Accept-Ranges": "bytes"}
        if r.status_code == 206:
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", r.headers.get("content-range", ""))
            if m is None or int(m.group(2)) < int(m.group(1)) or int(m.group(2)) >= size:
                raise PeerError("protocol", "视频服务的 Content-Range 不合法或超出视频大小")
            limit = int(m.group(2)) - int(m.group(1)) + 1
            headers["Content-Range"] = f"bytes {m.group(1)}-{m.group(2)}/{size}"
        declared = r.headers.get("content-length", "")
        if declared.isdigit():
            if int(declared) > limit:
                raise PeerError("too_large", "视频服务声明的长度超过视频大小，已拒绝")
            limit = int(declared)
        headers["Content-Length"] = str(limit)
        up = Upstream(r.status_code, headers, _nothing())
        up.body = self._capped(r, limit, up)
        return up

    async def _capped(self, r: httpx.Response, limit: int, up: Upstream) -> AsyncIterator[bytes]:
        chunks = r.aiter_raw().__aiter__()
        try:
            while up.served < limit:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    raise PeerError("short", "视频服务提前结束了传输") from None
                room = limit - up.served
                up.overrun = len(chunk) > room
                up.served += min(room, len(chunk))
                yield chunk[:room]
            if not up.overrun and "content-length" not in r.headers:
                # No declared length: anything after the video's size means an endless stream.
                try:
                    async with asyncio.timeout(1.0):
                        up.overrun = bool(await anext(chunks))
                except (StopAsyncIteration, TimeoutError):
                    pass
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.s) from exc


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


__all__ = [
    "Endpoint",
    "PeerError",
    "QueryAnswer",
    "TokenCache",
    "Upstream",
    "VideoServiceClient",
    "origin_of",
    "tls_context",
]
