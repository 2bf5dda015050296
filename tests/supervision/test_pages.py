"""The regulator's pages over real uploads: overview, hospital, exports, the record viewer."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from imsp.app import create_exchange_app
from imsp.auth.models import AuditEvent
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.client import sign_in
from tests.qualification import builders as qb
from tests.supervision.portal_builders import HOSPITAL_A, HOSPITAL_B, Reported, report

PERIOD = "start=2026-01-01&end=2026-01-15"


@pytest.fixture
def reported(settings: Settings, clock: FrozenClock) -> Reported:
    with TestClient(create_exchange_app(settings, clock=clock)) as exchange:
        return report(exchange, settings, clock)


@pytest.fixture
def regulator(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, reported: Reported
) -> Iterator[TestClient]:
    """Signed in after the uploads (the clock moved three days; sessions last 8 hours)."""
    qb.make_user(settings, clock.now(), username="regulator1", role="regulator")
    sign_in(portal_client, "regulator1", "Passw0rd-123")
    yield portal_client


def test_overview_shows_records_per_dataset_hospitals_and_days(
    regulator: TestClient, reported: Reported
) -> None:
    page = regulator.get(f"/supervision?{PERIOD}")
    assert page.status_code == 200
    html = page.text
    assert "监管总览" in html, html[html.find("<main>") :]
    assert "<svg" in html and "处方信息" in html
    assert HOSPITAL_A in html and HOSPITAL_B in html
    assert f"/supervision/hospitals/{reported.institution_a}?" in html
    # A: 12 patients + 6 prescriptions + 1 resend = 19 received; B: 6 received, 3 rejected.
    assert ">25<" in html  # records received in the period
    assert ">22<" in html  # accepted


def test_overview_defaults_to_the_last_days_with_data_and_refuses_bad_dates(
    regulator: TestClient, reported: Reported
) -> None:
    assert HOSPITAL_B in regulator.get("/supervision").text
    bad = regulator.get("/supervision?start=2026-13-01")
    assert bad.status_code == 400 and "yyyy-MM-dd" in bad.text
    assert regulator.get("/supervision?start=2026-01-09&end=2026-01-01").status_code == 400


def test_exports_hold_the_rows_of_the_page(regulator: TestClient, reported: Reported) -> None:
    for name, first in (("hospitals", "医疗机构"), ("datasets", "数据集"), ("days", "日期")):
        r = regulator.get(f"/supervision/export/{name}.xlsx?{PERIOD}")
        assert r.status_code == 200
        ws = load_workbook(io.BytesIO(r.content)).active
        assert ws is not None
        rows = [[c for c in row] for row in ws.iter_rows(values_only=True)]
        assert rows[0][0] == first
        if name == "hospitals":
            # Ranked by findings per 1,000 records: B (6 records) before A (19 records).
            by_name = {r[0]: r for r in rows[1:]}
            assert [r[0] for r in rows[1:]] == [HOSPITAL_B, HOSPITAL_A]
            assert by_name[HOSPITAL_A][2] == 19 and by_name[HOSPITAL_B][2:4] == [6, "50.0%"]
            rates = [float(r[8]) for r in rows[1:]]
            assert rates == sorted(rates, reverse=True) and rates[0] > 0
        if name == "days":
            assert len(rows) == 16  # header + 15 days of the period


def test_hospital_page_shows_its_datasets_days_and_rejections(
    regulator: TestClient, reported: Reported
) -> None:
    html = regulator.get(f"/supervision/hospitals/{reported.institution_b}?{PERIOD}").text
    assert HOSPITAL_B in html and "处方信息" in html
    assert "required" in html and "必填项为空" in html  # rejected by issue code
    r = regulator.get(f"/supervision/hospitals/{reported.institution_b}/export/days.xlsx?{PERIOD}")
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws is not None
    assert sum(row[1] for row in ws.iter_rows(min_row=2, values_only=True)) == 6
    assert regulator.get(f"/supervision/hospitals/99999?{PERIOD}").status_code == 404


def test_record_viewer_shows_versions_with_their_requests_masked_and_audited(
    regulator: TestClient, reported: Reported, settings: Settings
) -> None:
    html = regulator.get(f"/supervision/records/{reported.record_id}").text
    assert "第 2 版" in html and "第 1 版" in html and "uploadPrescriptionInfo" in html
    assert "更正诊断" in html
    assert 'id="record-actions"' in html
    assert "130126198501291796" not in html and "130126********1796" in html

    async def events(session: object) -> list[AuditEvent]:
        return list(
            (
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "personal_data.view")
                )
            ).all()  # type: ignore[attr-defined]
        )

    seen = qb.run(settings, events)
    assert [e.target for e in seen] == [f"record:{reported.record_id}"]
    assert seen[0].actor == "regulator1"


def test_a_hospital_sees_only_its_own_records_and_no_dashboards(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, reported: Reported
) -> None:
    from tests.exchange.builders import ORG_A, ORG_B

    own = qb.make_applicant(settings, clock.now(), org_code=ORG_A, username="hosp_a")
    sign_in(portal_client, own.username, own.password, "Hospital-2026")
    assert portal_client.get(f"/supervision/records/{reported.record_id}").status_code == 200
    assert portal_client.get(f"/supervision?{PERIOD}").status_code == 403
    portal_client.cookies.clear()
    other = qb.make_applicant(settings, clock.now(), org_code=ORG_B, username="hosp_b")
    sign_in(portal_client, other.username, other.password, "Hospital-2026")
    assert portal_client.get(f"/supervision/records/{reported.record_id}").status_code == 404


def test_rule_catalogue_lists_every_rule_with_citation_and_exports_it(
    regulator: TestClient,
) -> None:
    from imsp.standard.ruleset import load_rules

    html = regulator.get("/supervision/rules").text
    catalogue = load_rules()
    for rule in catalogue:
        assert f'id="{rule.id}"' in html
    r22 = catalogue["R22"]
    assert r22.citation_display in html and "条款号待核实" in html
    ws = load_workbook(io.BytesIO(regulator.get("/supervision/rules/export.xlsx").content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("规则编号", "规则名称", "依据")
    assert [r[0] for r in rows[1:]] == list(catalogue.ids)


def test_rule_catalogue_counts_open_findings_and_tests_a_rule_on_pasted_records(
    regulator: TestClient, reported: Reported
) -> None:
    import orjson

    from tests.exchange.builders import record
    from tests.portal.client import csrf_of

    html = regulator.get("/supervision/rules").text
    assert '/supervision/findings?rule=R43&status=open">9<' in html
    form = regulator.get("/supervision/rules/R28/test")
    rx = record("prescription")
    body = orjson.dumps([{**rx, "itemCount": 2}, {**rx, "recipeID": "RX-6", "itemCount": 6}])
    r = regulator.post(
        "/supervision/rules/R28/test",
        data={"csrf_token": csrf_of(form.text), "records": body.decode()},
    )
    assert r.status_code == 200
    assert "违反规则 1 条" in r.text and "超过 5 种" in r.text and "符合" in r.text
    bad = regulator.post(
        "/supervision/rules/R28/test",
        data={"csrf_token": csrf_of(form.text), "records": "{not json"},
    )
    assert bad.status_code == 400 and "不是合法的 JSON" in bad.text
    unknown = regulator.post(
        "/supervision/rules/R28/test",
        data={"csrf_token": csrf_of(form.text), "records": '{"nosuch": []}'},
    )
    assert unknown.status_code == 400 and "未知的数据集" in unknown.text


def test_record_viewer_shows_the_actions_other_parts_register(
    regulator: TestClient, reported: Reported
) -> None:
    from imsp.portal import supervise

    def video(view: Any) -> tuple[str, str, str]:
        return (f"/video/records/{view.id}", "调阅视频", "video-link")

    supervise.RECORD_ACTIONS.append(video)
    try:
        html = regulator.get(f"/supervision/records/{reported.record_id}").text
    finally:
        supervise.RECORD_ACTIONS.remove(video)
    assert f'id="video-link" href="/video/records/{reported.record_id}">调阅视频</a>' in html


def test_doctor_page_from_the_hospital_page_shows_masked_id_visits_and_findings(
    regulator: TestClient, reported: Reported
) -> None:
    import re

    html = regulator.get(f"/supervision/hospitals/{reported.institution_a}?{PERIOD}").text
    link = re.search(r'href="(/supervision/hospitals/\d+/doctors/f\d+)\?', html)
    assert link, "the hospital page links its doctors with the most findings"
    page = regulator.get(link.group(1)).text
    assert "处方信息" in page and "监管发现 / 未办结" in page
    masked = re.search(r"证件号码 (\d{6}\*{8}\d{3}[\dX])", page)
    assert masked and not re.search(r"(?<!\w)\d{17}[\dX](?!\w)", page)
    token = link.group(1).rsplit("/", 1)[1]
    other = f"/supervision/hospitals/{reported.institution_b}/doctors/{token}"
    assert regulator.get(other).status_code == 404  # looked up within its own hospital
    assert (
        regulator.get(f"/supervision/hospitals/{reported.institution_a}/doctors/x1").status_code
        == 404
    )
