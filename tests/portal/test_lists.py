"""Long lists are paginated: the applicant's departments and the reviewer's view of a submission."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from openpyxl import load_workbook
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


def _queue_rows(html: str) -> list[list[str]]:
    body = html.split('<table id="queue">', 1)[1].split("</table>", 1)[0]
    out = []
    for row in re.findall(r"<tr>\s*(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if len(cells) == 7:
            out.append([cells[0], cells[1]])
    return out


def test_the_review_list_searches_by_name_or_code_and_exports_the_same_rows(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    first = b.make_complete_applicant(settings, clock.now())
    second = b.make_complete_applicant(
        settings, clock.now(), org_code=b.ORG2, username="second", name="石家庄市第二医院"
    )
    for who in (first, second):
        b.submit(settings, who, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", "Passw0rd-123")

    everyone = portal_client.get("/review?status=all")
    assert len(_queue_rows(everyone.text)) == 2
    by_name = portal_client.get("/review", params={"status": "all", "q": "第二"})
    assert _queue_rows(by_name.text) == [["石家庄市第二医院", b.ORG2]]
    assert "共 1 条" in by_name.text
    by_code = portal_client.get("/review", params={"q": b.ORG[-6:].lower()})
    assert _queue_rows(by_code.text) == [[b.ORG_NAME, b.ORG]]
    nothing = portal_client.get("/review", params={"q": "%"})  # a wildcard is just a character
    assert _queue_rows(nothing.text) == [] and "没有名称或代码包含“%”的申请" in nothing.text

    for params in ({"status": "all", "q": "第二"}, {"status": "all", "q": ""}):
        page = portal_client.get("/review", params=params)
        export = portal_client.get("/review/export.xlsx", params=params)
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
        ws = load_workbook(io.BytesIO(export.content)).worksheets[0]
        rows = [[str(c.value or "") for c in r] for r in ws.iter_rows()]
        assert rows[0] == ["申请机构", "组织机构代码", "状态", "版本", "最近提交", "最近更新"]
        assert [r[:2] for r in rows[1:]] == _queue_rows(page.text)
        assert all(r[2] == "待审核" and r[3] == "第 1 版" for r in rows[1:])
