"""Conformance check of a hospital's video service (视频调阅接口自检), ``imsp video check URL``.

Runs the protocol of :mod:`imsp.standard.video` against a service the way the platform will call
it: token, token error codes, each patient index, unknown index, Range, the full file against its
size and SHA-256, tampered and expired playback URLs. Each item passes or fails with the reason, so a
hospital can fix its implementation before applying for acceptance (接入确认).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from imsp.standard import video as P

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the check table."""

    title: str
    ok: bool
    detail: str = ""


class _Fail(Exception):
    pass


@dataclass
class Target:
    url: str
    app_id: str
    app_secret: str
    visit_no: str
    id_card_no: str = ""
    patient_name: str = ""
    verify: str | bool = True  # a CA bundle file, or True for the system's
    max_wait: float = P.MAX_URL_TTL_SECONDS + 5
    timeout: float = 15.0


def _json(r: httpx.Response) -> dict[str, Any]:
    if not r.headers.get("content-type", "").startswith("application/json"):
        raise _Fail(f"HTTP {r.status_code}，Content-Type 不是 application/json")
    try:
        body = r.json()
    except ValueError as exc:
        raise _Fail(f"HTTP {r.status_code}，响应不是合法的 JSON") from exc
    if not isinstance(body, dict) or "code" not in body:
        raise _Fail("响应缺少 code 节点")
    return body


def _expect_code(r: httpx.Response, codes: set[int]) -> str:
    body = _json(r)
    want = "、".join(str(c) for c in sorted(codes))
    if body["code"] not in codes:
        raise _Fail(f"应返回代码 {want}，实际 {body['code']} {body.get('msg', '')}")
    status = P.CODES[body["code"]].http_status
    if r.status_code != status:
        raise _Fail(f"代码 {body['code']} 应配 HTTP {status}，实际 HTTP {r.status_code}")
    return f"返回 {body['code']} {body.get('msg', '')}"


def _videos(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, list) or not videos:
        raise _Fail("data.videos 为空")
    return videos


def _check_video(v: dict[str, Any], base: httpx.URL) -> None:
    missing = [name for name in P.VIDEO_FIELD_NAMES if name not in v]
    if missing:
        raise _Fail("视频缺少节点：" + "、".join(missing))
    if v["format"] != "mp4":
        raise _Fail(f"format 应为 mp4，实际 {v['format']}")
    if not isinstance(v["size"], int) or v["size"] <= 0:
        raise _Fail("size 应为正整数")
    if not isinstance(v["sha256"], str) or not _HEX64.match(v["sha256"]):
        raise _Fail("sha256 应为 64 位小写十六进制")
    play = urlsplit(str(v["playUrl"]))
    if (play.scheme, play.hostname, play.port or 443) != (base.scheme, base.host, base.port or 443):
        raise _Fail(f"playUrl 须与服务同一协议、主机与端口：{play.scheme}://{play.netloc}")
    ttl = v["playUrlExpiresIn"]
    if not isinstance(ttl, int) or not 0 < ttl <= P.MAX_URL_TTL_SECONDS:
        raise _Fail(f"playUrlExpiresIn 应在 1–{P.MAX_URL_TTL_SECONDS} 秒之间，实际 {ttl}")


def _unchecked() -> str:
    raise _Fail("未检索到视频，无法检查")


def run(target: Target, *, on_item: Callable[[Item], None] | None = None) -> list[Item]:
    """Every check against ``target``; stops early only when no token can be had."""
    items: list[Item] = []
    base = httpx.URL(target.url.rstrip("/"))
    client = httpx.Client(
        verify=target.verify, timeout=target.timeout, follow_redirects=False, trust_env=False
    )

    def step(title: str, fn: Callable[[], str]) -> bool:
        try:
            item = Item(title, True, fn())
        except _Fail as exc:
            item = Item(title, False, str(exc))
        except httpx.HTTPError as exc:
            item = Item(title, False, f"连接失败：{type(exc).__name__} {exc}")
        items.append(item)
        if on_item is not None:
            on_item(item)
        return item.ok

    state: dict[str, Any] = {}

    def get(path: str, *, token: str | None = None, **params: str) -> httpx.Response:
        headers = {P.TOKEN_HEADER: token} if token is not None else {}
        return client.get(str(base) + path, params=params, headers=headers)

    def token() -> str:
        r = get(P.TOKEN_PATH, appId=target.app_id, appSecret=target.app_secret)
        body = _json(r)
        data = body.get("data") or {}
        if body["code"] != P.OK or not isinstance(data, dict) or not data.get("accessToken"):
            raise _Fail(f"未取得令牌：{body['code']} {body.get('msg', '')}")
        if not isinstance(data.get("expiresIn"), int) or data["expiresIn"] <= 0:
            raise _Fail("expiresIn 应为正整数（秒）")
        state["token"] = data["accessToken"]
        return f"有效期 {data['expiresIn']} 秒"

    def wrong_secret() -> str:
        r = get(P.TOKEN_PATH, appId=target.app_id, appSecret=target.app_secret + "x")
        return _expect_code(r, {P.SECRET_MISMATCH, P.UNKNOWN_APP})

    def by(index: str, value: str) -> Callable[[], str]:
        def check() -> str:
            r = get(P.QUERY_PATH, token=state["token"], **{index: value})
            body = _json(r)
            if body["code"] != P.OK:
                raise _Fail(f"检索失败：{body['code']} {body.get('msg', '')}")
            videos = _videos(body)
            for v in videos:
                _check_video(v, base)
            mine = [v for v in videos if v.get("visitNo") == target.visit_no]
            if not mine:
                raise _Fail(f"结果中没有就诊流水号 {target.visit_no} 的视频")
            state.setdefault("video", mine[0])
            return f"{len(videos)} 个视频"

        return check

    def range_request() -> str:
        v = state["video"]
        r = client.get(v["playUrl"], headers={"Range": "bytes=0-1023"})
        if r.status_code != 206:
            raise _Fail(f"Range 请求应返回 206，实际 HTTP {r.status_code}")
        if not r.headers.get("content-type", "").startswith(P.MEDIA_TYPE):
            raise _Fail(f"Content-Type 应为 {P.MEDIA_TYPE}，实际 {r.headers.get('content-type')}")
        want = min(1024, v["size"])
        expected_range = f"bytes 0-{want - 1}/{v['size']}"
        if r.headers.get("content-range") != expected_range:
            raise _Fail(
                f"Content-Range 应为 {expected_range}，实际 {r.headers.get('content-range')}"
            )
        if len(r.content) != want or r.content[4:8] != b"ftyp":
            raise _Fail("前 1024 字节不是 MP4 文件头（ftyp）")
        return "206 " + expected_range

    def whole_file() -> str:
        v = state["video"]
        h, n = hashlib.sha256(), 0
        with client.stream("GET", v["playUrl"]) as r:
            if r.status_code != 200:
                raise _Fail(f"完整下载应返回 200，实际 HTTP {r.status_code}")
            for chunk in r.iter_bytes():
                n += len(chunk)
                h.update(chunk)
                if n > v["size"]:
                    raise _Fail(f"收到的字节数超过 size（{v['size']}）")
        if n != v["size"]:
            raise _Fail(f"大小不符：size {v['size']}，实际 {n}")
        if h.hexdigest() != v["sha256"]:
            raise _Fail("SHA-256 与 sha256 节点不符")
        return f"{n} 字节，SHA-256 一致"

    def tampered() -> str:
        url = state["video"]["playUrl"]
        bad = url[:-1] + ("0" if url[-1] != "0" else "1")
        return _expect_code(client.get(bad, headers={"Range": "bytes=0-15"}), {P.URL_EXPIRED})

    def expiry() -> str:
        v = state["video"]
        ttl = int(v["playUrlExpiresIn"])
        if ttl + 1 > target.max_wait:
            raise _Fail(f"有效期 {ttl} 秒超过本次等待上限 {target.max_wait:.0f} 秒（--max-wait）")
        time.sleep(ttl + 1.5)
        r = client.get(v["playUrl"], headers={"Range": "bytes=0-15"})
        return f"{ttl} 秒后" + _expect_code(r, {P.URL_EXPIRED})

    try:
        if not step("授权码获取", token):
            return items
        step("错误凭据的代码", wrong_secret)
        step("缺少令牌的代码", lambda: _expect_code(get(P.QUERY_PATH, visitNo=target.visit_no),
                                            {P.TOKEN_MISSING}))  # fmt: skip
        bogus = "invalid-" + "token"
        step("无效令牌的代码", lambda: _expect_code(
            get(P.QUERY_PATH, token=bogus, visitNo=target.visit_no), {P.TOKEN_INVALID}))  # fmt: skip
        found = step("按就诊流水号检索", by(P.VISIT_NO, target.visit_no))
        if target.id_card_no:
            step("按身份证件号码检索", by(P.ID_CARD_NO, target.id_card_no))
        if target.patient_name:
            step("按患者姓名检索", by(P.PATIENT_NAME, target.patient_name))
        step("未知索引的代码", lambda: _expect_code(
            get(P.QUERY_PATH, token=state["token"], visitNo="IMSP-NO-SUCH-VISIT-0000"), {P.UNKNOWN_INDEX}))  # fmt: skip
        step("缺少检索条件的代码", lambda: _expect_code(
            get(P.QUERY_PATH, token=state["token"]), {P.BAD_PARAMS}))  # fmt: skip
        if found and "video" in state:
            step("Range 请求", range_request)
            step("完整文件与 SHA-256", whole_file)
            step("篡改的播放地址被拒绝", tampered)
            step("播放地址过期", expiry)
        else:
            for title in (
                "Range 请求",
                "完整文件与 SHA-256",
                "篡改的播放地址被拒绝",
                "播放地址过期",
            ):
                step(title, _unchecked)
    finally:
        client.close()
    return items


__all__ = ["Item", "Target", "run"]
