"""Part 7 of the published spec: 视频调阅服务 — the protocol every internet hospital implements so
the platform can retrieve consultation videos (数据接入工作说明 第一章 §2). Generated from
:mod:`imsp.standard.video`, so the spec, the reference service and the platform's client agree."""

from __future__ import annotations

import json
from typing import Any, Final

from imsp.standard import video as P
from imsp.standard.spec.document import Part, code, link

#: An example hospital address (illustration only).
HOSPITAL_URL: Final = "https://video.hospital.example:8443"
#: Defaults of the platform's client (``imsp.config.VideoSettings``; a test keeps them equal).
CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 10.0
QUERY_DEADLINE: Final = 20.0
MAX_JSON_KB: Final = 1024


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _example_video() -> dict[str, Any]:
    return {
        "videoId": "V20250603000123",
        "visitNo": "GH202506030001",
        "patientName": "张三",
        "idCardNo": P.mask_id_card("130102198001011234"),
        "doctorName": "李医生",
        "doctorId": "D0012",
        "startTime": "2025-06-03 09:00:05",
        "endTime": "2025-06-03 09:12:40",
        "duration": 755.2,
        "format": "mp4",
        "size": 48213377,
        "sha256": "9f2c1e0b6a4d8e7f3a5b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f",
        "playUrl": HOSPITAL_URL + "/video/play/V20250603000123?expires=1748913425&sig=5c1f…",
        "playUrlExpiresIn": 300,
    }


def part(n: int) -> Part:
    """Chapter ``n`` of the spec: the video retrieval protocol hospitals implement."""
    p = Part(f"{n}-video", f"{n} 视频调阅服务")
    p.h(1, f"{n} 视频调阅服务", "video")
    p.p(
        "每个互联网医院开发一个视频调阅服务：监管平台给出患者索引（患者姓名、身份证件号码、就诊流水号），"
        "医院返回该次互联网诊疗的视频，供监管人员经平台调阅。本章是该服务的接口；"
        "与上传服务方向相反——医院提供，平台调用。"
    )
    p.table(
        ("项目", "内容"),
        [
            ("提供方 / 调用方", "互联网医院 / 监管平台"),
            ("协议", "HTTPS（TLS 1.2 及以上）；使用私有 CA 签发的证书时，须在平台登记该 CA 证书"),
            ("请求方式", "GET；字符编码 UTF-8；应答 " + code("application/json") + "（播放地址除外）"),
            ("鉴权", "令牌：平台用医院分配的 appId/appSecret 获取，放在请求头 " + code(P.TOKEN_HEADER + ": <令牌>")),
            ("视频格式", P.FORMAT + "，支持 HTTP Range（" + code("206 Partial Content") + "）"),
            ("登记", "医院在资质管理系统“视频服务登记”页（或由平台实施方）登记服务地址、appId/appSecret 与 CA 证书；appSecret 加密保存、不再显示"),
        ],
    )  # fmt: skip

    p.h(2, f"{n}.1 令牌获取", "video-token")
    p.p(
        "与平台给医院颁发令牌的方式相同（见 "
        + link("2 授权码获取服务", "token")
        + "）：医院为平台分配一对 appId/appSecret。"
    )
    p.code(f"GET {P.TOKEN_PATH}?appId=<appId>&appSecret=<appSecret> HTTP/1.1\nHost: video.hospital.example:8443\n", "http")  # fmt: skip
    p.code(_json({"code": 200, "msg": "成功", "data": {"accessToken": "vt_Q2x…（不透明字符串）", "expiresIn": 7200}}), "json")  # fmt: skip
    p.table(
        ("节点", "类型", "说明"),
        [
            (code("data.accessToken"), "string", "访问令牌，平台作为不透明字符串保存"),
            (code("data.expiresIn"), "int", "有效秒数"),
        ],
    )

    p.h(2, f"{n}.2 视频检索", "video-query")
    p.p("服务地址 " + code(P.QUERY_PATH) + "；请求头 " + code(P.TOKEN_HEADER) + "。查询参数至少包含一个患者索引，多个索引同时给出时须同时满足：")  # fmt: skip
    p.table(
        ("参数", "类型", "必填", "说明"),
        [
            (code(P.PATIENT_NAME), "string", "三选一", "患者姓名；仅凭姓名可能匹配多位患者，应答在 data.patients 中列出候选"),
            (code(P.ID_CARD_NO), "string", "三选一", "患者身份证件号码（完整号码，仅在 HTTPS 中传输）"),
            (code(P.VISIT_NO), "string", "三选一", "就诊流水号，即医院上传数据时的业务号（如挂号、处方的 " + code("bussID") + "）"),
            (code(P.START_DATE), "date", "否", "就诊日期起（yyyy-MM-dd，含）"),
            (code(P.END_DATE), "date", "否", "就诊日期止（yyyy-MM-dd，含）"),
        ],
    )  # fmt: skip
    p.code(f"GET {P.QUERY_PATH}?{P.VISIT_NO}=GH202506030001 HTTP/1.1\nHost: video.hospital.example:8443\n{P.TOKEN_HEADER}: vt_Q2x…\n", "http")  # fmt: skip
    video = _example_video()
    answer = {
        "code": 200,
        "msg": "成功",
        "data": {
            "total": 1,
            "patients": [{"patientName": "张三", "idCardNo": video["idCardNo"], "visitNos": ["GH202506030001"]}],
            "videos": [video],
        },
    }  # fmt: skip
    p.code(_json(answer), "json")
    p.p(f"{code('data.videos[]')} 的节点（至多 {P.MAX_RESULTS} 个，超过时返回 {P.TOO_MANY}）：")
    p.table(
        ("节点", "类型", "说明", "备注"),
        [(code(f.name), f.type, f.title, f.note or "—") for f in P.VIDEO_FIELDS],
    )
    p.p(code("data.patients[]") + " 的节点：")
    p.table(
        ("节点", "类型", "说明"),
        [(code(f.name), f.type, f.title) for f in P.PATIENT_FIELDS],
    )

    p.h(2, f"{n}.3 播放地址", "video-play")
    p.ul(
        [
            code("playUrl") + f" 由医院签发，有效期 {code('playUrlExpiresIn')} 秒（不超过 {P.MAX_URL_TTL_SECONDS} 秒）；过期或被篡改时返回 {P.URL_EXPIRED}，平台重新检索取得新地址。",
            "须与视频服务同一协议、主机与端口；平台不访问其他地址（包括内网其他主机），也不跟随重定向。",
            "支持单段 " + code("Range: bytes=起-止") + "，返回 " + code("206") + "、" + code("Content-Range") + "、" + code("Content-Length") + "，" + code("Content-Type: " + P.MEDIA_TYPE) + "；无 Range 时返回整个文件（200）。",
            "返回的字节数不得超过声明的长度，文件内容须与 " + code("size") + "、" + code("sha256") + " 一致（接入确认时逐字节校验）。",
        ]
    )  # fmt: skip
    p.code(
        "GET /video/play/V20250603000123?expires=1748913425&sig=5c1f… HTTP/1.1\nRange: bytes=0-1048575\n\n"
        "HTTP/1.1 206 Partial Content\nContent-Type: video/mp4\nAccept-Ranges: bytes\n"
        "Content-Range: bytes 0-1048575/48213377\nContent-Length: 1048576\n",
        "http",
    )

    p.h(2, f"{n}.4 错误代码", "video-errors")
    p.p(
        "所有 JSON 应答都带 " + code("code") + "；令牌问题使用不同的代码（"
        + "、".join(f"{c} {P.CODES[c].msg}" for c in sorted(P.TOKEN_ERRORS))
        + "），平台据此重新获取令牌并重发一次。"
    )  # fmt: skip
    p.table(
        ("code", "HTTP 状态", "含义", "处理建议", "平台动作"),
        [
            (code(c.code), str(c.http_status), c.msg, c.hint,
             "刷新令牌后重发一次" if c.code in P.TOKEN_ERRORS else
             "重新检索取得新地址" if c.code == P.URL_EXPIRED else
             "提示稍后重试" if c.code == P.BUSY else "提示调阅人")
            for c in P.CODES.values()
        ],
    )  # fmt: skip
    p.code(_json({"code": P.TOO_MANY, "msg": P.CODES[P.TOO_MANY].msg, "data": None}), "json")

    p.h(2, f"{n}.5 平台的调用约束", "video-limits")
    p.ul(
        [
            f"连接超时 {CONNECT_TIMEOUT:g} 秒；两次收到数据的间隔不超过 {READ_TIMEOUT:g} 秒；令牌或检索请求 {QUERY_DEADLINE:g} 秒内须完成。",
            f"JSON 应答不超过 {MAX_JSON_KB} KB，且 " + code("Content-Type") + " 须为 " + code("application/json") + "。",
            "证书按登记的 CA 证书校验；证书不符、过期或主机名不符时平台拒绝连接。",
            "平台经自身转发视频（Range 透传，不先下载整个文件）；医院的播放地址与令牌不会到达浏览器。",
            "每次检索与播放都记入平台审计日志（调阅人、时间、地址、机构、脱敏的患者索引、视频、传输字节数）。",
        ]
    )  # fmt: skip

    p.h(2, f"{n}.6 参考实现与自检", "video-check")
    p.p(
        "医院接入套件提供参考实现 " + code("imsp video serve --dir <视频目录> [--index <索引文件>]")
        + "（首次启动生成自签名证书）与自检工具 " + code("imsp video check <服务地址> --app-id … --app-secret … --visit-no …")
        + "：依次检查令牌、错误代码、各检索条件、Range、完整文件的大小与 SHA-256、篡改与过期的播放地址，输出通过/未通过表。"
    )  # fmt: skip
    return p


__all__ = ["CONNECT_TIMEOUT", "MAX_JSON_KB", "QUERY_DEADLINE", "READ_TIMEOUT", "part"]
