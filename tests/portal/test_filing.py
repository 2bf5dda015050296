"""备案登记表: the filing record of an approved application as a PDF — for its own applicant and
the reviewers only, approved applications only, audited, with the doctors' ID numbers masked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import AuditEvent
from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.client import post_form, sign_in
from tests.qualification import builders as b
from tests.support.database import run

STAFF = "Passw0rd-123"
FULL_ID = "130102197804152317"
MASKED_ID = "130102********2317"


def pdf_text(data: bytes, where: Path) -> str:
    """The text of a PDF as poppler's pdftotext reads it (a real parser, not our renderer)."""
    path = where / "filing.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return out.stdout.decode("utf-8")


@pytest.mark.timeout(600)  # WeasyPrint on a loaded 2-core machine
def test_filing_record_of_an_approved_application(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    c = portal_client
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(settings, clock.now(), username="regulator1", role="regulator")
    who = b.make_complete_applicant(settings, clock.now())
    other = b.make_complete_applicant(
        settings, clock.now(), org_code=b.ORG2, username="hospital2", name="另一家示范医院"
    )
    b.submit(settings, who, clock.now())
    url = f"/applications/{who.application_id}/filing.pdf"

    sign_in(c, "reviewer1", STAFF)
    assert c.get(url).status_code == 404  # submitted, not approved
    app_page = f"/applications/{who.application_id}"
    assert "下载备案登记表" not in c.get(app_page).text
    clock.advance(hours=2)
    post_form(c, f"{app_page}/approve", {"reason": "材料齐全"}, page=app_page)
    assert 'id="filing-record"' in c.get(app_page).text
    r = c.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content, tmp_path)
    assert "互联网医院资质备案登记表" in text
    assert b.ORG_NAME in text and b.ORG in text
    assert MASKED_ID in text and FULL_ID not in text
    assert f"冀互医资备〔2026〕{who.application_id:04d}-01号" in text
    assert "2026-01-05 11:00:00" in text  # the approval time (Beijing)
    assert "reviewer1（登记机关）" in text and "材料齐全" in text
    assert "执业许可证" in text and "线下审批文件" in text and "心血管内科" in text

    # Audited as a view of personal data, in the request's unit of work.
    async def events(session: AsyncSession) -> list[AuditEvent]:
        rows = await session.scalars(
            select(AuditEvent).where(
                AuditEvent.target == f"application:{who.application_id}/filing"
            )
        )
        return list(rows)

    [event] = run(settings, events)
    assert event.action == "personal_data.view" and event.actor == "reviewer1"
    assert event.detail == {"where": "filing_record", "version": 1, "doctors": 1}

    # Regulators and operators: not for them; another institution: not found.
    c.cookies.clear()
    sign_in(c, "regulator1", STAFF)
    assert c.get(url).status_code == 403
    c.cookies.clear()
    sign_in(c, other.username, other.password, "Hospital-2026")
    assert c.get(url).status_code == 404
    assert c.get(f"/applications/{other.application_id}/filing.pdf").status_code == 404

    # The applicant finds it on its progress page and downloads its own.
    c.cookies.clear()
    sign_in(c, who.username, who.password, "Hospital-2026")
    assert f'href="{url}"' in c.get("/my/progress").text
    mine = c.get(url)
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF-")
    assert len(run(settings, events)) == 2
