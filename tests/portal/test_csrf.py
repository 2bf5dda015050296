"""CSRF protection on every form: each POST route of the portal, found on the app itself (so a
route added later is covered without anyone remembering this test), refuses a forged token
before it changes anything."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.auth.models import PortalSession, PortalUser
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.notify.models import Message
from imsp.qualification.models import Application, Attachment, Department, Doctor
from tests.portal.client import sign_in
from tests.portal.routes import PUBLIC, concrete, routes
from tests.qualification import builders as b

NEW_PASSWORD = "Hospital-2026"
#: Who may reach the routes under each first path segment (the CSRF check comes after the role).
ROLE_OF_SEGMENT = {
    "my": "applicant",
    "applications": "reviewer",
    "accounts": "operator",
    "logout": "applicant",
    "password": "applicant",
    "video": "operator",
    "supervision": "regulator",
    "messages": "reviewer",
}
#: Routes whose segment is shared by several roles (接入确认).
ROLE_OF_ROUTE = {
    "/acceptance/{org}/apply": "applicant",
    "/acceptance/{org}/decide": "centre",
    "/acceptance/{org}/scope": "operator",
    "/acceptance/{org}/video": "operator",
    "/acceptance/{org}/purge": "operator",
}


def _state(settings: Settings) -> tuple[object, ...]:
    async def work(session: AsyncSession) -> tuple[object, ...]:
        apps = (
            await session.execute(
                select(Application.status, Application.version, Application.profile)
            )
        ).all()
        users = (
            await session.execute(
                select(
                    PortalUser.username,
                    PortalUser.password_hash,
                    PortalUser.active,
                    PortalUser.email,
                )
            )
        ).all()
        return (
            [tuple(r) for r in apps],
            sorted(tuple(r) for r in users),
            len((await session.scalars(select(Doctor.id))).all()),
            len((await session.scalars(select(Department.id))).all()),
            (await session.scalars(select(Attachment.removed_at))).all(),
            len((await session.scalars(select(PortalSession.id))).all()),
            (await session.scalars(select(Message.read_at))).all(),
        )

    return b.run(settings, work)


def _post_routes(app: FastAPI) -> list[str]:
    """Every POST route of the app that needs a signed-in user (``routes.PUBLIC`` do not)."""
    return [p for m, p in routes(app) if m == "POST" and (m, p) not in PUBLIC]


def test_every_post_route_refuses_a_forged_csrf_token_and_changes_nothing(
    settings: Settings, clock: FrozenClock, portal_client: TestClient
) -> None:
    who = b.make_complete_applicant(settings, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    b.make_user(settings, clock.now(), username="operator1", role="operator")
    b.make_user(settings, clock.now(), username="regulator1", role="regulator")
    b.make_user(settings, clock.now(), username="centre1", role="centre")
    b.submit(settings, who, clock.now())  # the reviewer has an unread message to mark
    app = portal_client.app
    assert isinstance(app, FastAPI)
    clients = {"applicant": portal_client}
    for role, username in (
        ("reviewer", "reviewer1"),
        ("operator", "operator1"),
        ("regulator", "regulator1"),
        ("centre", "centre1"),
    ):
        clients[role] = TestClient(app)
        sign_in(clients[role], username, "Passw0rd-123")
    sign_in(portal_client, who.username, who.password, NEW_PASSWORD)
    routes = _post_routes(app)
    assert len(routes) >= 14, routes  # the portal's forms, not an empty app
    before = _state(settings)

    for template in routes:
        segment = template.strip("/").split("/")[0]
        role = ROLE_OF_ROUTE.get(template) or ROLE_OF_SEGMENT.get(segment)
        assert role is not None, f"classify the new POST route {template} in this test"
        path = concrete(template)
        client = clients[role]
        for token in ("forged", None):
            data = {"reason": "x", "active": "0"} | ({"csrf_token": token} if token else {})
            r = client.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403, (template, token, r.status_code)
            assert "CSRF 令牌无效" in r.text, (template, token)

    assert _state(settings) == before
