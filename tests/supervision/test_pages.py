"""The regulator's pages over real uploads: overview, hospital, exports, the record viewer."""

from __future__ import annotations

import io
from collections.abc import Iterator

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

PERIOD = "start=2026-01-01&end=2026-01-10"


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
            assert [r[0] for r in rows[1:]] == [HOSPITAL_A, HOSPITAL_B]
            assert rows[1][2] == 19 and rows[2][2:4] == [6, "50.0%"]
        if name == "days":
            assert len(rows) == 11  # header + 10 days of the period


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
                    select(AuditEvent).where(AuditEvent.action == "personal_data_view")
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
