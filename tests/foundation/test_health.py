from __future__ import annotations

from fastapi.testclient import TestClient


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
