"""Access control: anonymous visitors reach only the login page and static assets; applicants see
only their own institution (also when guessing URLs); reviewers and regulators cannot edit."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.qualification.models import Application, Attachment, Department, Doctor, Transition
from tests.portal.client import post_form, sign_in
from tests.portal.routes import MEDIA, NETWORK, PUBLIC, concrete, routes
from tests.qualification import builders as b

NEW_PASSWORD = "Hospital-2026"


@dataclass(frozen=True)
class World:
    a: b.Applicant
    b: b.Applicant
    a_attachment: int
    b_attachment: int
    b_doctor: int
    b_department: int


@pytest.fixture
def world(settings: Settings, clock: FrozenClock) -> World:
    a = b.make_complete_applicant(settings, clock.now())
    other = b.make_complete_applicant(
        settings, clock.now(), org_code=b.ORG2, username="other", name="另一家医院"
    )
    b.submit(settings, other, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(settings, clock.now(), username="regulator1", role="regulator")
    b.make_user(settings, clock.now(), username="operator1", role="operator")

    async def ids(session: AsyncSession) -> World:
        att_a = await session.scalar(
            select(Attachment.id).where(Attachment.application_id == a.application_id)
        )
        att_b = await session.scalar(
            select(Attachment.id).where(Attachment.application_id == other.application_id)
        )
        doc_b = await session.scalar(
            select(Doctor.id).where(Doctor.application_id == other.application_id)
        )
        dep_b = await session.scalar(
            select(Department.id).where(Department.application_id == other.application_id)
        )
        assert att_a and att_b and doc_b and dep_b
        return World(a, other, att_a, att_b, doc_b, dep_b)

    return b.run(settings, ids)


def _snapshot(settings: Settings) -> tuple[object, ...]:
    """Everything an attacker might try to change."""

    async def work(session: AsyncSession) -> tuple[object, ...]:
        apps = (
            await session.execute(
                select(
                    Application.id, Application.status, Application.version, Application.profile
                ).order_by(Application.id)
            )
        ).all()
        docs = (
            await session.execute(
                select(Doctor.id, Doctor.cert_id, Doctor.data).order_by(Doctor.id)
            )
        ).all()
        deps = (
            await session.execute(select(Department.id, Department.data).order_by(Department.id))
        ).all()
        files = (
            await session.execute(
                select(Attachment.id, Attachment.removed_at).order_by(Attachment.id)
            )
        ).all()
        steps = await session.scalar(select(func.count()).select_from(Transition))
        return (
            [tuple(r) for r in apps],
            [tuple(r) for r in docs],
            [tuple(r) for r in deps],
            [tuple(r) for r in files],
            steps,
        )

    return b.run(settings, work)


def _decide_each(client: TestClient, app_id: int, *, page: str) -> list[int]:
    """Try to approve, then reject, application ``app_id``; the status of each answer."""
    return [
        post_form(
            client, f"/applications/{app_id}/{action}", {"reason": "x"}, page=page
        ).status_code
        for action in ("approve", "reject")
    ]


def _guarded(client: TestClient, method: str) -> list[str]:
    """Request paths of every ``method`` route of the app that is not public (``routes.PUBLIC``)."""
    app = client.app
    assert isinstance(app, FastAPI)
    found = [
        concrete(p)
        for m, p in routes(app)
        if m == method and (m, p) not in PUBLIC and (m, p) not in NETWORK
    ]
    assert len(found) >= 10, found  # the portal's pages, not an empty app
    return found


def test_anonymous_visitors_are_sent_to_the_login_page(
    portal_client: TestClient, world: World
) -> None:
    media = {concrete(p) for _, p in MEDIA}
    for path in [*_guarded(portal_client, "GET"), "/review?status=all"]:
        r = portal_client.get(path, follow_redirects=False)
        if path in media:
            assert r.status_code == 401, path
            continue
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login"), path


def test_metrics_are_refused_outside_the_monitoring_network(portal_client: TestClient) -> None:
    app = portal_client.app
    assert isinstance(app, FastAPI)
    assert set(routes(app)) >= NETWORK
    for _, path in NETWORK:
        r = portal_client.get(path, follow_redirects=False)  # the test client is no address
        assert r.status_code == 403 and r.json()["code"] == 40300, path


def test_anonymous_posts_change_nothing(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    before = _snapshot(settings)
    for path in _guarded(portal_client, "POST"):
        r = portal_client.post(path, data={"reason": "x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    assert _snapshot(settings) == before


def test_the_public_routes_exist_and_need_no_sign_in(portal_client: TestClient) -> None:
    app = portal_client.app
    assert isinstance(app, FastAPI)
    assert set(routes(app)) >= PUBLIC
    for method, path in PUBLIC:
        if method == "GET":
            assert portal_client.get(path, follow_redirects=False).status_code == 200, path


def test_the_login_page_and_static_assets_are_public(portal_client: TestClient) -> None:
    assert portal_client.get("/login").status_code == 200
    css = portal_client.get("/static/portal.css")
    assert css.status_code == 200 and "Noto Sans CJK SC" in css.text


def test_pages_load_nothing_from_other_origins(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    page = portal_client.get("/login")
    assert "http://" not in page.text and "https://" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    sign_in(portal_client, world.a.username, world.a.password, NEW_PASSWORD)
    for path in ("/my", "/my/institution", "/my/doctors/new"):
        html = portal_client.get(path).text
        scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
        assert scripts == ["", ""]  # only our own files: no inline script
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/static/upload.js" defer>',
            '<script src="/static/confirm.js" defer>',
        ]
        for name in ("upload.js", "confirm.js"):
            assert portal_client.get(f"/static/{name}").status_code == 200
        assert "https://" not in html and "http://" not in html


def test_an_applicant_cannot_read_another_institutions_data_or_files(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    sign_in(portal_client, world.a.username, world.a.password, NEW_PASSWORD)
    assert portal_client.get(f"/attachments/{world.a_attachment}").status_code == 200
    for path in (
        f"/attachments/{world.b_attachment}",
        f"/attachments/{world.b_attachment}/download",
        f"/my/doctors/{world.b_doctor}",
        f"/my/departments/{world.b_department}",
    ):
        r = portal_client.get(path)
        assert r.status_code == 404, path
        assert "另一家医院" not in r.text and b.ORG2 not in r.text
    for path in (
        f"/applications/{world.b.application_id}",
        f"/applications/{world.b.application_id}/v1/doctors/0",
    ):  # its own submitted versions it may read; another's do not exist for it
        r = portal_client.get(path)
        assert r.status_code == 404, path
        assert b.ORG2 not in r.text
    for path in ("/review?status=all", "/accounts"):
        assert portal_client.get(path).status_code == 403, path
    # Its own pages never mention the other institution.
    for path in ("/my", "/my/doctors", "/my/departments", "/my/attachments", "/my/progress"):
        assert b.ORG2 not in portal_client.get(path).text


def test_an_applicant_cannot_change_another_institutions_records(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    sign_in(portal_client, world.a.username, world.a.password, NEW_PASSWORD)
    before = _snapshot(settings)
    r = post_form(
        portal_client,
        f"/my/doctors/{world.b_doctor}",
        b.doctor(doctorName="篡改"),
        page="/my/doctors/new",
    )
    assert r.status_code == 404
    r = post_form(portal_client, f"/my/doctors/{world.b_doctor}/delete", page="/my/doctors")
    assert r.status_code == 404
    r = post_form(
        portal_client, f"/my/departments/{world.b_department}/delete", page="/my/departments"
    )
    assert r.status_code == 404
    r = post_form(
        portal_client, f"/my/attachments/{world.b_attachment}/remove", page="/my/attachments"
    )
    assert r.status_code == 404
    assert _decide_each(portal_client, world.b.application_id, page="/my") == [404, 404]
    assert _snapshot(settings) == before


def test_an_applicant_cannot_approve_its_own_application(
    portal_client: TestClient, settings: Settings, clock: FrozenClock, world: World
) -> None:
    b.submit(settings, world.a, clock.now())
    sign_in(portal_client, world.a.username, world.a.password, NEW_PASSWORD)
    before = _snapshot(settings)
    r = post_form(portal_client, f"/applications/{world.a.application_id}/approve", page="/my")
    assert r.status_code == 403 and "无权" in r.text
    assert _snapshot(settings) == before


def test_a_reviewer_cannot_edit_an_application(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    sign_in(portal_client, "reviewer1", "Passw0rd-123")
    assert portal_client.get(f"/applications/{world.b.application_id}").status_code == 200
    before = _snapshot(settings)
    for path in ("/my", "/my/institution", "/my/doctors", "/my/doctors/new"):
        assert portal_client.get(path).status_code == 403, path
    for path, data in (
        ("/my/institution", b.form_of(b.profile())),
        ("/my/doctors/new", b.doctor()),
        (f"/my/doctors/{world.b_doctor}", b.doctor(doctorName="篡改")),
        ("/my/submit", {}),
        (f"/my/attachments/{world.b_attachment}/remove", {}),
    ):
        r = post_form(portal_client, path, data, page="/review")
        assert r.status_code == 403, path
    assert _snapshot(settings) == before


def test_a_regulator_reads_everything_but_cannot_decide(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    sign_in(portal_client, "regulator1", "Passw0rd-123")
    page = portal_client.get(f"/applications/{world.b.application_id}")
    assert page.status_code == 200 and "另一家医院" in page.text
    assert "审核驳回</button>" not in page.text and "审核通过</button>" not in page.text
    assert portal_client.get(f"/attachments/{world.b_attachment}").status_code == 200
    before = _snapshot(settings)
    statuses = _decide_each(portal_client, world.b.application_id, page="/review?status=all")
    assert statuses == [403, 403]
    assert _snapshot(settings) == before


def test_an_operator_sees_accounts_but_no_application_data(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    sign_in(portal_client, "operator1", "Passw0rd-123")
    assert portal_client.get("/accounts").status_code == 200
    assert portal_client.get(f"/attachments/{world.b_attachment}").status_code == 403
    assert portal_client.get(f"/applications/{world.b.application_id}").status_code == 403
    r = post_form(
        portal_client, f"/applications/{world.b.application_id}/approve", page="/accounts"
    )
    assert r.status_code == 404


def test_viewing_files_and_id_numbers_is_audited(
    portal_client: TestClient, settings: Settings, world: World
) -> None:
    from imsp.auth.models import AuditEvent

    sign_in(portal_client, "reviewer1", "Passw0rd-123")
    page = portal_client.get(f"/applications/{world.b.application_id}")
    assert "130102********2317" in page.text and "130102197804152317" not in page.text
    detail = portal_client.get(f"/applications/{world.b.application_id}/v1/doctors/0")
    assert "130102197804152317" in detail.text
    portal_client.get(f"/attachments/{world.b_attachment}/download")

    async def events(session: AsyncSession) -> list[tuple[str, str]]:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.actor == "reviewer1"))
        return [(e.action, e.target) for e in rows]

    seen = b.run(settings, events)
    assert ("personal_data.view", f"application:{world.b.application_id}/doctor") in seen
    assert ("attachment.download", f"attachment:{world.b_attachment}") in seen
