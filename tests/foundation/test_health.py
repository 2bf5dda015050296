from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from imsp.config import Settings


def test_exchange_healthz_reports_database_status(
    exchange_client: TestClient, database_url: str
) -> None:
    r = exchange_client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["service"] == "exchange"
    assert body["database"]["status"] == "ok"
    assert body["database"]["dialect"] == (
        "sqlite" if database_url.startswith("sqlite") else "postgresql"
    )


def test_portal_healthz_reports_database_status(portal_client: TestClient) -> None:
    r = portal_client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["service"] == "portal"
    assert r.json()["database"]["status"] == "ok"


def test_unknown_path_answers_with_catalogue_error_shape(exchange_client: TestClient) -> None:
    r = exchange_client.get("/no-such-service")
    assert r.status_code == 404
    assert r.json() == {"code": 40400, "msg": "服务不存在", "data": None}


def test_healthz_degrades_when_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imsp.app import create_exchange_app
    from imsp.config import Settings

    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/none", data_dir=tmp_path)
    with TestClient(create_exchange_app(settings)) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"]["status"] == "error"


def test_readyz_reports_database_and_migrations(
    exchange_client: TestClient, settings: Settings
) -> None:
    r = exchange_client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    # and Redis when the shared state lives there (IMSP_TEST_SHARED_STATE=redis)
    redis = {"redis": "ok"} if settings.redis_url else {}
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", **redis}


def test_readyz_is_503_with_a_chinese_reason_when_the_schema_is_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imsp.app import create_portal_app
    from imsp.config import Settings

    settings = Settings(data_dir=tmp_path)  # a new SQLite file, never migrated
    tmp_path.mkdir(exist_ok=True)
    with TestClient(create_portal_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.json()["checks"] == {"database": "ok", "migrations": "error"}
    assert (
        "数据库结构不是最新版本" in r.json()["reason"] and "imsp db upgrade" in r.json()["reason"]
    )


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imsp.app import create_exchange_app
    from imsp.config import Settings

    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/none", data_dir=tmp_path)
    with TestClient(create_exchange_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "error"
    assert "数据库无法连接" in r.json()["reason"]


def test_readyz_checks_redis_when_configured(settings, clock) -> None:  # type: ignore[no-untyped-def]
    from imsp.app import create_exchange_app
    from tests.support.live import refused_url

    with refused_url() as nowhere:
        down = settings.model_copy(update={"redis_url": nowhere.replace("http://", "redis://")})
        with TestClient(create_exchange_app(down, clock=clock)) as client:
            r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["redis"] == "error"
    assert "Redis 无法连接" in r.json()["reason"]


def test_readyz_pings_a_real_redis(settings, clock) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from imsp.app import create_exchange_app
    from imsp.readiness import ping_redis

    url = "redis://127.0.0.1:6379/0"
    if asyncio.run(ping_redis(url)) is not None:
        pytest.skip("no Redis at 127.0.0.1:6379 (the machines of this project run one)")
    up = settings.model_copy(update={"redis_url": url})
    with TestClient(create_exchange_app(up, clock=clock)) as client:
        r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["redis"] == "ok"


def test_a_database_ahead_of_the_code_counts_as_migrated() -> None:
    """Rolling upgrades: the new release migrates first (expand), old nodes stay ready."""
    from imsp.storage import migrate

    heads = migrate._script().get_heads()
    assert migrate.missing_heads(frozenset(heads)) == []
    assert migrate.missing_heads(frozenset([*heads[1:], "9999_from_a_newer_release"])) == []
    assert migrate.missing_heads(frozenset(heads[1:])) == [heads[0]]
    assert migrate.missing_heads(frozenset()) == sorted(heads)
