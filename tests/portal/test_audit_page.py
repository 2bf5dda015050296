"""The audit trail on screen: the operator's and regulator's audit page with filters, and each
application's own history on its page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.client import sign_in
from tests.qualification import builders as b


def _rows(html: str) -> list[list[str]]:
    body = html.split('<table id="audit">', 1)[1].split("</table>", 1)[0]
    out = []
    for row in re.findall(r"<tr>\s*(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        out.append([c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)])
    return [r for r in out if len(r) == 7]


def test_the_audit_page_filters_by_action_person_institution_and_date(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    first = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, first, clock.now())
    clock.advance(days=2)
    second = b.make_complete_applicant(
        settings, clock.now(), org_code=b.ORG2, username="second", name="石家庄市第二医院"
    )
    b.submit(settings, second, clock.now())
    b.make_user(settings, clock.now(), username="regulator1", role="regulator")
    sign_in(portal_client, "regulator1", "Passw0rd-123")

    everything = portal_client.get("/audit")
    assert everything.status_code == 200 and 'href="/audit"' in everything.text  # in the nav
    submits = _rows(portal_client.get("/audit", params={"action": "qualification.submit"}).text)
    assert [(r[1], r[2], r[4]) for r in submits] == [
        ("second", "提交资质申请", "石家庄市第二医院"),  # newest first
        ("hospital", "提交资质申请", b.ORG_NAME),
    ]
    by_place = _rows(portal_client.get("/audit", params={"institution": "第二"}).text)
    assert by_place and all(r[4] == "石家庄市第二医院" for r in by_place)
    by_person = _rows(portal_client.get("/audit", params={"actor": "hosp"}).text)
    assert by_person and all(r[1] == "hospital" for r in by_person)
    day = clock.now().date().isoformat()
    today = _rows(
        portal_client.get(
            "/audit", params={"action": "qualification.", "since": day, "until": day}
        ).text
    )
    assert [r[1] for r in today] == ["second"]
    logins = _rows(portal_client.get("/audit", params={"action": "login."}).text)
    assert [r[2] for r in logins] == ["登录成功"]  # the regulator's own sign-in


def test_an_application_page_shows_its_own_audit_trail_and_only_staff_see_the_log(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    first = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, first, clock.now())
    second = b.make_complete_applicant(
        settings, clock.now(), org_code=b.ORG2, username="second", name="石家庄市第二医院"
    )
    b.submit(settings, second, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    sign_in(portal_client, "reviewer1", "Passw0rd-123")
    assert portal_client.get("/audit").status_code == 403
    page = portal_client.get(f"/applications/{first.application_id}").text
    trail = page.split('id="trail"', 1)[1].split("</table>", 1)[0]
    assert "提交资质申请" in trail and "hospital" in trail
    assert "second" not in trail  # another institution's events are not its history
    portal_client.cookies.clear()
    sign_in(portal_client, first.username, first.password, "Hospital-2026")
    assert portal_client.get("/audit").status_code == 403
    own = portal_client.get(f"/applications/{first.application_id}").text
    assert 'id="trail"' not in own
