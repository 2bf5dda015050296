"""Settings, read from the environment (prefix ``IMSP_``) and passed explicitly into each app.

There is no import-time singleton: ``Settings()`` is built by the CLI (or a test) and handed to
``create_exchange_app(settings)`` / ``create_portal_app(settings)``. Nested groups use ``__`` in the
environment, e.g. ``IMSP_EXCHANGE__TOKEN_TTL_SECONDS=600``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
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
        default=10, ge=1, description="每个 appId/地址每分钟失败次数上限"
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
    login_failures_before_lock: int = 5
    lock_minutes: int = 15
    secure_cookies: bool = Field(default=False, description="HTTPS 部署时设为 true")


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

    secret_key: str = Field(
        default="",
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


class SupervisionSettings(BaseModel):
    """监管 (supervision): when rules run and how long a missing reference may wait."""

    grace_hours: float = Field(
        default=48, ge=0, description="关联数据缺失的宽限期（小时），超过后记为 R43 关联数据不存在"
    )
    worker: bool = Field(default=True, description="imsp serve 是否在进程内运行监管规则工作进程")
    batch: int = Field(default=500, ge=1, description="工作进程每批领取的变更数")
    poll_seconds: float = Field(default=1.0, gt=0, description="队列为空时的轮询间隔（秒）")
    lease_seconds: float = Field(
        default=120, gt=0, description="领取后未确认的变更在此时间后可被重新领取（秒）"
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
    host: str = "127.0.0.1"
    exchange: ExchangeSettings = ExchangeSettings()
    portal: PortalSettings = PortalSettings()
    acceptance: AcceptanceSettings = AcceptanceSettings()
    video: VideoSettings = VideoSettings()
    supervision: SupervisionSettings = SupervisionSettings()

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
    def sync_url(self) -> str:
        """The synchronous URL of the same database (used by Alembic)."""
        url = self.sqlalchemy_url
        return url.replace("sqlite+aiosqlite://", "sqlite://", 1)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")
