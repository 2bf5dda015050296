"""The video retrieval protocol (视频调阅) every internet hospital implements — as data.

数据接入工作说明 第一章 §2: each internet hospital provides a service that, given a patient index
(name, resident ID number, visit serial number), lets the supervision platform retrieve the video of
that internet consultation over HTTPS, GET, with token authentication. This module is that protocol:
paths, parameter names, response fields and the error catalogue. The platform (``imsp.video``), the
reference hospital service and the conformance check (``imsp.client.video``) and the published spec
chapter (``imsp.standard.spec.video``) all read it, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The hospital issues the platform a token the same way the platform issues hospitals one.
TOKEN_PATH: Final = "/auth/accesstoken/create"  # noqa: S105 - a path
QUERY_PATH: Final = "/video/query"
#: Request header carrying the token on ``/video/query`` (and accepted on playback URLs).
TOKEN_HEADER: Final = "accessToken"  # noqa: S105 - a header name

#: The three patient indexes; a query carries at least one of them.
PATIENT_NAME: Final = "patientName"
ID_CARD_NO: Final = "idCardNo"
VISIT_NO: Final = "visitNo"
INDEXES: Final[tuple[str, ...]] = (PATIENT_NAME, ID_CARD_NO, VISIT_NO)
INDEX_TITLES: Final[dict[str, str]] = {
    PATIENT_NAME: "患者姓名",
    ID_CARD_NO: "身份证件号码",
    VISIT_NO: "就诊流水号",
}
START_DATE: Final = "startDate"
END_DATE: Final = "endDate"
DATE_FORMAT: Final = "%Y-%m-%d"
DATETIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

#: The only container/codec the protocol allows: MP4 (H.264 video, AAC audio), HTTP Range.
MEDIA_TYPE: Final = "video/mp4"
FORMAT: Final = "MP4（H.264/AAC）"
#: At most this many videos in one answer; more is ``TOO_MANY`` (narrow the query).
MAX_RESULTS: Final = 50
#: A playback URL is valid at most this long (seconds) after the answer that carried it.
MAX_URL_TTL_SECONDS: Final = 600


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    title: str
    note: str = ""


#: ``data.videos[]`` of a query answer, in order.
VIDEO_FIELDS: Final[tuple[Field, ...]] = (
    Field("videoId", "string", "视频标识", "在本机构内唯一，长度不超过 64"),
    Field("visitNo", "string", "就诊流水号", "与上传数据的业务号一致（如挂号、处方的 bussID）"),
    Field("patientName", "string", "患者姓名"),
    Field("idCardNo", "string", "身份证件号码（脱敏）", "只返回前 4 位与后 4 位，其余以 * 代替"),
    Field("doctorName", "string", "接诊医师姓名"),
    Field("doctorId", "string", "接诊医师工号", "可为空"),
    Field("startTime", "datetime", "开始时间", "yyyy-MM-dd HH:mm:ss，北京时间"),
    Field("endTime", "datetime", "结束时间", "yyyy-MM-dd HH:mm:ss，北京时间"),
    Field("duration", "number", "时长（秒）"),
    Field("format", "string", "格式", "固定为 mp4"),
    Field("size", "int", "文件大小（字节）"),
    Field("sha256", "string", "文件 SHA-256", "64 位小写十六进制"),
    Field("playUrl", "string", "播放地址", "HTTPS，与本服务同一主机与端口，支持 Range"),
    Field("playUrlExpiresIn", "int", "播放地址有效秒数", f"不超过 {MAX_URL_TTL_SECONDS}"),
)
VIDEO_FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in VIDEO_FIELDS)

#: ``data.patients[]``: the distinct patients the query matched (a name alone may match several).
PATIENT_FIELDS: Final[tuple[Field, ...]] = (
    Field("patientName", "string", "患者姓名"),
    Field("idCardNo", "string", "身份证件号码（脱敏）"),
    Field("visitNos", "string[]", "该患者匹配的就诊流水号"),
)


@dataclass(frozen=True, slots=True)
class VideoCode:
    code: int
    http_status: int
    msg: str
    hint: str


def _c(code: int, http: int, msg: str, hint: str) -> VideoCode:
    return VideoCode(code, http, msg, hint)


OK: Final = 200
BAD_PARAMS: Final = 40001
UNKNOWN_APP: Final = 40002
SECRET_MISMATCH: Final = 40004
TOKEN_MISSING: Final = 40101
TOKEN_INVALID: Final = 40102
TOKEN_EXPIRED: Final = 40103
URL_EXPIRED: Final = 40301
UNKNOWN_INDEX: Final = 40401
VIDEO_GONE: Final = 40402
RANGE_INVALID: Final = 41600
TOO_MANY: Final = 42201
BUSY: Final = 50301

#: The hospital service's codes (``code`` of every JSON answer; playback URLs answer JSON with one
#: of these when they refuse).
CODES: Final[dict[int, VideoCode]] = {
    c.code: c
    for c in (
        _c(OK, 200, "成功", "data.videos 为匹配的视频；data.patients 为匹配的患者"),
        _c(BAD_PARAMS, 400, "请求参数错误", "至少提供 patientName、idCardNo、visitNo 之一；日期为 yyyy-MM-dd"),
        _c(UNKNOWN_APP, 401, "appId 不存在", "核对医院为平台分配的 appId"),
        _c(SECRET_MISMATCH, 401, "appId 与 appSecret 不匹配", "核对 appSecret"),
        _c(TOKEN_MISSING, 401, "缺少访问令牌", "在请求头 accessToken 中携带令牌"),
        _c(TOKEN_INVALID, 401, "访问令牌无效", "平台重新获取令牌后重发一次"),
        _c(TOKEN_EXPIRED, 401, "访问令牌已过期", "平台重新获取令牌后重发一次"),
        _c(URL_EXPIRED, 403, "播放地址已过期或无效", "重新检索以取得新的播放地址"),
        _c(UNKNOWN_INDEX, 404, "未找到匹配的就诊", "核对检索条件；该患者或就诊没有视频"),
        _c(VIDEO_GONE, 404, "视频不存在", "视频已被删除或标识有误"),
        _c(RANGE_INVALID, 416, "Range 请求范围无效", "范围须落在文件大小之内"),
        _c(TOO_MANY, 422, "匹配结果过多", f"超过 {MAX_RESULTS} 个视频，请增加检索条件或缩小日期范围"),
        _c(BUSY, 503, "服务繁忙", "按 Retry-After 等待后重试"),
    )
}  # fmt: skip

#: Codes after which the platform fetches a new token and resends the request once.
TOKEN_ERRORS: Final[frozenset[int]] = frozenset({TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED})


def mask_id_card(value: str) -> str:
    """An ID number as the protocol and every list shows it: first 4 and last 4 characters."""
    value = value.strip()
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(value: str) -> str:
    """A patient name in audit lists: the surname only (张**)."""
    value = value.strip()
    return value[:1] + "*" * (len(value) - 1) if value else ""


__all__ = [
    "BAD_PARAMS",
    "BUSY",
    "CODES",
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "END_DATE",
    "FORMAT",
    "ID_CARD_NO",
    "INDEXES",
    "INDEX_TITLES",
    "MAX_RESULTS",
    "MAX_URL_TTL_SECONDS",
    "MEDIA_TYPE",
    "OK",
    "PATIENT_FIELDS",
    "PATIENT_NAME",
    "QUERY_PATH",
    "RANGE_INVALID",
    "SECRET_MISMATCH",
    "START_DATE",
    "TOKEN_ERRORS",
    "TOKEN_EXPIRED",
    "TOKEN_HEADER",
    "TOKEN_INVALID",
    "TOKEN_MISSING",
    "TOKEN_PATH",
    "TOO_MANY",
    "UNKNOWN_APP",
    "UNKNOWN_INDEX",
    "URL_EXPIRED",
    "VIDEO_FIELDS",
    "VIDEO_FIELD_NAMES",
    "VIDEO_GONE",
    "Field",
    "VideoCode",
    "mask_id_card",
    "mask_name",
]
