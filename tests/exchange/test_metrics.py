"""Prometheus ``/metrics`` of the data exchange service, scraped from a real server on loopback:
every counter moves by exactly what the requests did, and only allowed addresses may read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from imsp.app import create_exchange_app
from imsp.clock import FrozenClock
from imsp.config import MetricsSettings, Settings
from imsp.exchange import changes
from tests.exchange.builders import ORG_A, make_credential, record, records
from tests.exchange.conftest import Peek
from tests.support.database import run
from tests.support.live import live_server

JSON = {"Content-Type": "application/json"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client, **headers: str) -> Samples:
    r = http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def fresh(settings: Settings, **metrics: Any) -> Settings:
    """``settings`` with metrics options (samples never cached unless asked)."""
    m = MetricsSettings(**{"sample_seconds": 0, **metrics})
    return settings.model_copy(update={"metrics": m})


@pytest.fixture
def served(settings: Settings, clock: FrozenClock) -> Iterator[httpx.Client]:
    app = create_exchange_app(fresh(settings), clock=clock)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http


def _token(http: httpx.Client, app_id: str, secret: str) -> httpx.Response:
    return http.get("/auth/accesstoken/create", params={"appId": app_id, "appSecret": secret})


def _upload(http: httpx.Client, body: Any, token: str, **params: str) -> Any:
    r = http.post(
        "/uploadRegister",
        content=orjson.dumps(body),
        headers={**JSON, "accessToken": token},
        params=params,
    )
    return r.json()


def test_counters_move_by_exactly_what_the_requests_did(
    served: httpx.Client, settings: Settings, clock: FrozenClock, peek: Peek
) -> None:
    http = served
    cred = make_credential(settings, clock, ORG_A)
    before = scrape(http)

    assert _token(http, cred.app_id, "wrong-secret").json()["code"] == 40004
    token = _token(http, cred.app_id, cred.app_secret).json()["data"]["accessToken"]
    good = records("register", 2)
    bad = record("register", n=2, registerType="")  # a required field left empty
    receipt = _upload(http, [*good, bad], token)
    assert [r["msgCode"] for r in receipt["data"]["results"]] == [200, 200, -99]
    issue = {e["code"] for e in receipt["data"]["results"][2]["errors"]}
    assert issue == {"required"}
    dry = _upload(http, records("register", 1, start=3), token, dryRun="true")
    assert dry["data"]["results"][0]["msgCode"] == 202
    assert _upload(http, good, "not-a-token")["code"] == 40102
    patient = http.post(
        "/uploadPatientFile", json=records("patient", 1), headers={"accessToken": token}
    ).json()
    assert patient["data"]["results"][0]["warnings"] == []
    assert http.get("/standard/v1/register.schema.json").status_code == 200

    after = scrape(http)
    d = lambda name, **labels: delta(before, after, name, **labels)  # noqa: E731
    svc = "uploadRegister"
    assert d("imsp_exchange_requests_total", service=svc, code="200") == 2
    assert d("imsp_exchange_requests_total", service=svc, code="40102") == 1
    assert d("imsp_exchange_request_seconds_count", service=svc) == 3
    assert d("imsp_exchange_request_seconds_bucket", service=svc, le="+Inf") == 3
    # generated registrations refer to a patient not uploaded yet: stored with a -95 warning
    warned = sum(1 for r in receipt["data"]["results"][:2] if r["warnings"])
    assert warned == 2
    assert d("imsp_exchange_records_total", dataset="register", outcome="warned") == 2
    assert d("imsp_exchange_records_total", dataset="register", outcome="accepted") == 0
    assert d("imsp_exchange_records_total", dataset="register", outcome="rejected") == 1
    assert d("imsp_exchange_records_total", dataset="register", outcome="dry_run") == 1
    assert d("imsp_exchange_records_total", dataset="patient", outcome="accepted") == 1
    assert d("imsp_exchange_rejected_records_total", dataset="register", issue="required") == 1
    assert d("imsp_exchange_tokens_issued_total") == 1
    assert d("imsp_exchange_tokens_refused_total", reason="wrong_secret") == 1
    assert d("imsp_exchange_requests_total", service="accesstoken", code="200") == 1
    assert d("imsp_exchange_requests_total", service="accesstoken", code="40004") == 1
    route = "/standard/v1/{name}.schema.json"
    assert (
        d("imsp_http_requests_total", server="exchange", route=route, method="GET", status="2xx")
        == 1
    )
    # uploads and tokens keep their own meters: never counted twice by the generic middleware
    assert not any(
        name == "imsp_http_requests_total" and dict(labels)["route"] in ("/uploadRegister",)
        for name, labels in after
    )
    # the change feed holds the three stored records (no worker runs beside a bare app)
    assert peek.count("record_change") == 3
    assert value(after, "imsp_supervision_queue_depth") == 3
    assert value(after, "imsp_supervision_queue_oldest_seconds") >= 0
    assert value(after, "imsp_metrics_sample_ok") == 1
    assert value(after, "imsp_build_info", version=_version(), server="exchange") == 1
    assert value(after, "process_cpu_seconds_total") > 0


def _version() -> str:
    from imsp import __version__

    return __version__


def test_metrics_carry_no_app_id_token_or_identifier(
    served: httpx.Client, settings: Settings, clock: FrozenClock
) -> None:
    http = served
    cred = make_credential(settings, clock, ORG_A)
    token = _token(http, cred.app_id, cred.app_secret).json()["data"]["accessToken"]
    rec = record("register")
    _upload(http, [rec, {**rec, "patientCertID": "130126198501291790"}], token)
    text = http.get("/metrics").text
    for secret in (cred.app_id, cred.app_secret, token, ORG_A, rec["patientCertID"], "1301261985"):
        assert secret not in text


def test_only_allowed_peers_may_read(settings: Settings, clock: FrozenClock) -> None:
    """A real TCP peer (127.0.0.1) outside ``IMSP_METRICS__ALLOW`` is refused with 40300."""
    app = create_exchange_app(fresh(settings, allow="10.0.0.0/8"), clock=clock)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        r = http.get("/metrics")
        assert r.status_code == 403
        assert r.json()["code"] == 40300
        assert "imsp_" not in r.text


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-For", "127.0.0.1, 198.51.100.3"),
        ("Forwarded", 'for="[2001:db8::1]:443"'),
        ("X-Forwarded-For", "not-an-address"),
    ],
)
def test_a_proxied_request_from_outside_is_refused(
    served: httpx.Client, header: str, value: str
) -> None:
    """A load balancer on the same host connects from loopback: what it forwards decides."""
    r = served.get("/metrics", headers={header: value})
    assert r.status_code == 403
    assert r.json()["code"] == 40300


def test_a_proxied_request_from_an_allowed_address_is_answered(served: httpx.Client) -> None:
    assert served.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_a_monitoring_network_may_read(settings: Settings, clock: FrozenClock) -> None:
    """In-process ASGI with the scope's peer set to a non-loopback address (the live tests above
    cannot bind one): allowed from 10.0.0.0/8 when configured, refused from elsewhere."""
    allowing = fresh(settings, allow="127.0.0.1, 10.0.0.0/8")
    with TestClient(create_exchange_app(allowing, clock=clock), client=("10.1.2.3", 5000)) as c:
        assert c.get("/metrics").status_code == 200
    with TestClient(create_exchange_app(fresh(settings), clock=clock), client=("10.1.2.3", 1)) as c:
        assert c.get("/metrics").status_code == 403


def test_metrics_can_be_turned_off(settings: Settings, clock: FrozenClock) -> None:
    off = fresh(settings, enabled=False)
    with TestClient(create_exchange_app(off, clock=clock), client=("127.0.0.1", 1)) as c:
        assert c.get("/metrics").status_code == 404


def test_a_failing_sampler_never_fails_the_scrape(settings: Settings, clock: FrozenClock) -> None:
    app = create_exchange_app(fresh(settings, sample_timeout_seconds=0.05), clock=clock)

    async def stuck() -> list[Any]:
        import asyncio

        await asyncio.sleep(5)
        return []

    app.state.metrics.samplers.append(stuck)
    with TestClient(app, client=("127.0.0.1", 1)) as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    assert "imsp_metrics_sample_ok 0.0" in r.text


def test_samples_are_reused_within_the_sample_interval(
    settings: Settings, clock: FrozenClock, peek: Peek
) -> None:
    app = create_exchange_app(fresh(settings, sample_seconds=3600), clock=clock)
    cred = make_credential(settings, clock, ORG_A)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert value(scrape(http), "imsp_supervision_queue_depth") == 0
        token = _token(http, cred.app_id, cred.app_secret).json()["data"]["accessToken"]
        _upload(http, records("register", 3), token)
        assert peek.count("record_change") == 3
        assert value(scrape(http), "imsp_supervision_queue_depth") == 0  # the cached sample


def test_a_long_backlog_is_estimated_from_the_id_range(
    settings: Settings, clock: FrozenClock, exchange_client: TestClient
) -> None:
    cred = make_credential(settings, clock, ORG_A)
    token = exchange_client.get(
        "/auth/accesstoken/create", params={"appId": cred.app_id, "appSecret": cred.app_secret}
    ).json()["data"]["accessToken"]
    r = exchange_client.post(
        "/uploadRegister", json=records("register", 5), headers={"accessToken": token}
    )
    assert r.json()["data"]["success"] == 5
    assert run(settings, lambda s: changes.backlog(s, cap=100))[0] == 5
    depth, oldest = run(settings, lambda s: changes.backlog(s, cap=2))
    assert depth == 5 and oldest is not None


def test_routes_are_counted_by_template_never_by_raw_path(served: httpx.Client) -> None:
    before = scrape(served)
    assert served.get("/standard/v1/codes/no-such-table-130102199001011234.json").status_code == 404
    assert served.get("/no/such/path/130102199001011234").status_code == 404
    r = served.get("/metrics")
    after = scrape(served)
    assert "130102199001011234" not in r.text
    template = "/standard/v1/codes/{table}.json"
    assert (
        delta(
            before,
            after,
            "imsp_http_requests_total",
            server="exchange",
            route=template,
            method="GET",
            status="4xx",
        )
        == 1
    )
    unmatched = {"server": "exchange", "route": "<unmatched>", "method": "GET", "status": "4xx"}
    assert delta(before, after, "imsp_http_requests_total", **unmatched) == 1


def test_a_bad_allow_list_is_a_configuration_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"not an address or CIDR: 10\.0\.0\.0/33"):
        MetricsSettings(allow="127.0.0.1, 10.0.0.0/33")
