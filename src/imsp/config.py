"""Settings, read from the environment (prefix ``IMSP_``) and passed explicitly into each app.

There is no import-time singleton: ``Settings()`` is built by the CLI (or a test) and handed to
``create_exchange_app(settings)`` / ``create_portal_app(settings)``. Nested groups use ``__`` in the
environment, e.g. ``IMSP_EXCHANGE__TOKEN_TTL_SECONDS=600``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExchangeSettings(BaseModel):
    """数据上报 (data exchange service, default port 8888)."""

    port: int = 8888
    token_ttl_seconds: int = Field(
        default=86400, ge=60, description="访问令牌有效期（秒），默认 1 天"
    )
    max_records: int = Field(default=1000, ge=1, description="单次上传的最大记录数")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="请求体上限（字节）")
    auth_failures_per_minute: int = Field(
        default=10,
        ge=1,
        description="每个 (appId, 地址) 每分钟失败次数上限；按地址计数时正确的凭据或令牌不受影响",
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="令牌校验结果在进程内缓存的秒数；凭据停用后最迟在此时间内失效（0 为不缓存）",
    )
    bench_echo: bool = Field(
        default=False, description="仅供基准测试：开启隐藏的 POST /bench/echo 对照端点"
    )


class PortalSettings(BaseModel):
    """资质管理 and the regulator's portal (default port 8091)."""

    port: int = 8091
    session_ttl_seconds: int = 8 * 3600
    max_upload_bytes: int = 10 * 1024 * 1024
    login_free_failures_per_address: int = Field(
        default=10, ge=1, description="同一地址登录失败多少次后开始逐次延长等待时间"
    )
    login_free_failures_per_account: int = Field(
        default=5, ge=1, description="同一账号在同一地址登录失败多少次后开始逐次延长等待时间"
    )
    login_tarpit_seconds: float = Field(
        default=3.0,
        ge=0,
        le=30,
        description="被限流的登录尝试延迟多少秒再应答（不占用 CPU 与数据库连接），使洪泛几乎无开销",
    )
    login_max_delay_seconds: int = Field(
        default=900, ge=1, description="登录失败后等待时间的上限（秒）；不会锁定账号"
    )
    secure_cookies: bool = Field(
        default=False,
        description="始终使用 Secure Cookie；经 HTTPS 访问时（含可信代理转发）无需设置也会启用",
    )


class SupervisionSettings(BaseModel):
    """监管 (supervision): when rules run and how long a missing reference may wait."""

    grace_hours: float = Field(
        default=48, ge=0, description="关联数据缺失的宽限期（小时），超过后记为 R43 关联数据不存在"
    )
    worker: bool = Field(default=True, description="imsp serve 是否在进程内运行监管规则工作进程")
    reference_warnings: bool = Field(
        default=True, description="上传回执是否对尚未上传的关联数据给出 -95 警告（不拒收）"
    )
    reference_cache_seconds: float = Field(
        default=60,
        ge=0,
        description="回执关联检查缓存已知存在的关联数据的时长（秒）：其间在其他进程作废或归档的记录"
        "可能不再给出 -95 警告；0 为不缓存",
    )
    batch: int = Field(default=500, ge=1, description="工作进程每批领取的变更数")
    poll_seconds: float = Field(default=1.0, gt=0, description="队列为空时的轮询间隔（秒）")
    chores_seconds: float = Field(
        default=30.0,
        ge=0,
        description="队列为空时处理到期待关联检查、逾期整改和看板汇总的最短间隔（秒）",
    )
    lease_seconds: float = Field(
        default=120, gt=0, description="领取后未确认的变更在此时间后可被重新领取（秒）"
    )
    nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="单独运行的工作进程降低的 CPU 优先级（nice 值），使上传请求优先，队列随后追平",
    )


class ServerSettings(BaseModel):
    """Connection limits of ``imsp serve`` (each of its two servers, per process)."""

    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="请求行与请求头须在此秒数内收齐，否则断开连接"
    )
    body_timeout_seconds: float = Field(
        default=120.0, gt=0, description="请求体须在请求头之后此秒数内收齐，否则断开连接"
    )
    keep_alive_seconds: float = Field(
        default=5.0, gt=0, description="空闲的长连接（keep-alive）保持的秒数"
    )
    max_connections: int = Field(
        default=4096, ge=1, description="每个服务每个进程同时打开的连接数上限，超出即关闭"
    )
    shutdown_seconds: float = Field(
        default=30.0,
        gt=0,
        description="收到 SIGTERM 后等待进行中的请求（如慢速上传）完成的最长秒数；新连接立即拒绝",
    )


class AcceptanceSettings(BaseModel):
    """接入确认: the acceptance board's thresholds (versioned: a change of any figure is a new
    ``thresholds_version``, printed in every report), report rendering."""

    thresholds_version: str = Field(default="2026.1", description="验收阈值版本")
    min_records: int = Field(default=50, ge=1, description="每个必选服务至少接收的记录数")
    min_records_small: int = Field(
        default=10, ge=1, description="基本信息、评价信息、用户协议至少接收的记录数"
    )
    validity: float = Field(default=0.95, ge=0, le=1, description="有效率下限")
    completeness: float = Field(default=0.90, ge=0, le=1, description="建议项完整率下限")
    reference_integrity: float = Field(default=0.98, ge=0, le=1, description="关联完整率下限")
    report_workers: int = Field(default=1, ge=1, le=4, description="同时渲染的验收报告数")


class VideoSettings(BaseModel):
    """视频调阅: calling hospitals' video services (imsp.video)."""

    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="加密医院视频服务 appSecret 的密钥（32 字节的 base64）；为空时使用数据目录下的 video.key",
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="连接超时（秒）")
    read_timeout: float = Field(
        default=10.0, gt=0, description="读取超时（秒，两次收到数据的最长间隔）"
    )
    query_deadline: float = Field(
        default=20.0, gt=0, description="一次令牌或检索请求的总时限（秒）"
    )
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024, description="检索响应体上限（字节）")
    max_video_bytes: int = Field(
        default=4 * 1024**3, ge=1024, description="单个视频大小上限（字节）"
    )


class SmtpSettings(BaseModel):
    """Optional e-mail of portal notifications through the operator's SMTP relay. Without a
    ``host`` no mail is queued or sent; the message centre works either way."""

    host: str = Field(default="", description="SMTP 中继服务器地址；为空时不发送邮件")
    port: int = Field(default=25, ge=1, le=65535, description="SMTP 端口")
    user: str = Field(default="", description="SMTP 登录用户名；为空时不登录")
    password: SecretStr = Field(default=SecretStr(""), description="SMTP 登录密码")
    sender: str = Field(
        default="", description="发件人地址（如 imsp@wjw.hebei.gov.cn）；为空时用 imsp@<host>"
    )
    starttls: bool = Field(default=False, description="连接后以 STARTTLS 加密")
    timeout_seconds: float = Field(default=10.0, gt=0, description="连接与每次收发的超时（秒）")
    poll_seconds: float = Field(default=5.0, gt=0, description="发件箱的轮询间隔（秒）")
    max_attempts: int = Field(default=8, ge=1, description="发送失败后最多尝试的次数，之后放弃")

    @property
    def enabled(self) -> bool:
        return bool(self.host.strip())


class MetricsSettings(BaseModel):
    """Prometheus ``/metrics`` on each HTTP server (``imsp.metrics``)."""

    enabled: bool = Field(default=True, description="是否在每个服务上提供 Prometheus 指标 /metrics")
    allow: str = Field(
        default="127.0.0.0/8,::1",
        description="允许读取 /metrics 的地址（逗号分隔的 IP 或网段）；默认只允许本机。"
        "经代理转发的请求，X-Forwarded-For 中的每个地址也须在此范围内",
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"不是 IP 地址或网段 / not an address or CIDR: {part.strip()}"
                    ) from None
        return value

    sample_seconds: float = Field(
        default=5.0,
        ge=0,
        description="监管队列深度等数据库指标的采样间隔（秒）：间隔内的抓取使用上次的采样值",
    )
    sample_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30, description="一次数据库指标采样的时限（秒），超时则该次不报告"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IMSP_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("var"), description="数据目录（SQLite 文件、附件、报文归档）"
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL 连接串；为空时使用数据目录下的 SQLite"
    )
    database_replica_url: str | None = Field(
        default=None,
        description="PostgreSQL 只读副本连接串（流复制备库）：监管看板、报表与导出从这里读；"
        "为空时读主库",
    )
    database_pgbouncer: bool = Field(
        default=False,
        description="经 PgBouncer 事务池模式连接：不使用服务端预备语句，不使用连接启动参数"
        "（锁等待时限改为每个事务 SET LOCAL）",
    )
    host: str = "127.0.0.1"
    lock_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="等待数据库锁的最长秒数；超时则本次操作失败、全部回滚并提示稍后重试",
    )
    trusted_proxies: str = Field(
        default="",
        description="可信反向代理地址（逗号分隔的 IP 或网段，如 10.0.0.1,10.0.8.0/24）；"
        "只有来自这些地址的请求才采用 X-Forwarded-For 中的客户端地址。默认为空：不信任任何代理",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="日志格式：text（便于阅读）或 json（每行一个 JSON 对象，含交换流水号与节点名）",
    )
    log_access: bool = Field(
        default=False,
        description="text 格式下是否也逐条记录请求（json 格式总是记录）",
    )
    node_name: str = Field(default="", description="日志中的节点名；为空时使用主机名（另附进程号）")
    redis_url: str | None = Field(
        default=None,
        description="Redis 连接串（如 redis://127.0.0.1:6379/0）；设置后令牌吊销、令牌缓存失效、"
        "限流与登录节流计数及短时锁由各节点共享，/readyz 也检查其可达；为空时保存在各进程内存中（单节点）",
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="HTTPS 证书文件（PEM，含中间证书链）；与 tls_key_file 同时设置后两个端口都只接受 HTTPS",
    )
    tls_key_file: Path | None = Field(default=None, description="HTTPS 证书私钥文件（PEM）")
    redis_prefix: str = Field(
        default="imsp:",
        min_length=1,
        max_length=64,
        description="Redis 键名前缀（同一 Redis 上运行多套平台或测试时区分各自的键）",
    )
    exchange: ExchangeSettings = ExchangeSettings()
    metrics: MetricsSettings = MetricsSettings()
    portal: PortalSettings = PortalSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    server: ServerSettings = ServerSettings()
    video: VideoSettings = VideoSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()
    smtp: SmtpSettings = SmtpSettings()

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: psycopg 3 for PostgreSQL, aiosqlite for SQLite."""
        url = self.database_url
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'imsp.db').resolve()}"
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def replica_sqlalchemy_url(self) -> str | None:
        """The async URL of the read replica (``None``: read from the primary)."""
        if not self.database_replica_url or self.is_sqlite:
            return None
        return self.model_copy(update={"database_url": self.database_replica_url}).sqlalchemy_url

    @property
    def sync_url(self) -> str:
        """The synchronous URL of the same database (used by Alembic)."""
        url = self.sqlalchemy_url
        return url.replace("sqlite+aiosqlite://", "sqlite://", 1)

    @property
    def tls(self) -> bool:
        """Whether the servers speak HTTPS (both a certificate and its key are configured)."""
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
