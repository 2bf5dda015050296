"""Long lists are paginated: the applicant's departments and the reviewer's view of a submission."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.qualification import fields as F
from imsp.qualification import roster as records
from tests.portal.client import sign_in
from tests.qualification import builders as b


def _rows(html: str, marker: str) -> list[str]:
    return re.findall(rf"<tr><td>({marker}\d+)</td>", html)


def test_department_lists_paginate_for_applicant_and_reviewer(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    who = b.make_complete_applicant(settings, clock.now())

    async def more(session: AsyncSession) -> None:
        app, inst = await b.load(session, who.application_id)
        for i in range(24):
            raw = b.department(deptID=f"D{i:02d}", deptName=f"科室{i}", principalCertID=None)
            await records.save_record(
                session, app=app, institution=inst, roster=F.DEPARTMENTS, raw=raw, now=clock.now()
            )

    b.run(settings, more)
    sign_in(portal_client, who.username, who.password, "Hospital-2026")
    first = portal_client.get("/my/departments")
    assert "已登记科室（25）" in first.text
    shown = _rows(first.text, "0") + _rows(first.text, "D")
    assert len(shown) == 20 and shown[0] == "0304" and shown[-1] == "D18"
    assert "下一页" in first.text
    second = portal_client.get("/my/departments?page=2")
    assert _rows(second.text, "D") == ["D19", "D20", "D21", "D22", "D23"]

    b.submit(settings, who, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    portal_client.cookies.clear()
    sign_in(portal_client, "reviewer1", "Passw0rd-123")
    url = f"/applications/{who.application_id}"
    page = portal_client.get(url)
    assert "科室信息（25）" in page.text and f'href="{url}?dpage=2"' in page.text
    page2 = portal_client.get(f"{url}?dpage=2")
    assert f"{url}/v1/departments/24" in page2.text
    assert f'{url}/v1/departments/0"' not in page2.text
