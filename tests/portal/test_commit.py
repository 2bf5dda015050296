"""The unit of work commits before the answer: a page that says 已保存 has saved.

Over real TCP (uvicorn on loopback), because an in-process test client waits for everything the
app does, including work done after the response was sent — exactly what these tests look for.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.auth.models import PortalUser
from imsp.clock import FrozenClock
from imsp.config import Settings, SmtpSettings
from imsp.notify.models import Mail, Message
from imsp.qualification.models import Application
from tests.portal.client import csrf_of
from tests.qualification import builders as b
from tests.support.live import live_server, refused_url

PASSWORD = "Passw0rd-123"
NEW_PASSWORD = "Hospital-2026"


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
    )


def test_a_fresh_session_is_live_when_the_login_answer_arrives(
    settings: Settings, clock: FrozenClock
) -> None:
    """Log in and at once open a protected page, many times: never bounced to the login page
    (on the old code the session row was committed after the redirect went out)."""
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    bounced = 0
    with live_server(create_portal_app(settings, clock=clock)) as url:
        for _ in range(40):
            with httpx.Client(base_url=url, follow_redirects=False) as client:
                r = _login(client, "reviewer1", PASSWORD)
                assert r.status_code == 303, r.text
                page = client.get("/review?status=all")
                bounced += page.status_code != 200
    assert bounced == 0


@contextmanager
def _row_locked(settings: Settings, application_id: int) -> Iterator[None]:
    """Hold a lock on the application row from another connection (PostgreSQL ``FOR UPDATE``;
    SQLite has no row locks, so the whole database is taken with ``BEGIN EXCLUSIVE``)."""
    if settings.is_sqlite:
        path = make_url(settings.sqlalchemy_url).database
        assert path
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        conn.execute(
            text("SELECT id FROM qualification_application WHERE id = :id FOR UPDATE"),
            {"id": application_id},
        )
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def _profile(settings: Settings, application_id: int) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        app = await session.scalar(select(Application).where(Application.id == application_id))
        assert app is not None
        return dict(app.profile)

    return b.run(settings, work)


def test_a_save_that_cannot_commit_answers_with_the_form_not_with_saved(
    settings: Settings, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    quick = settings.model_copy(update={"lock_timeout_seconds": 0.5})
    who = b.make_applicant(settings, clock.now())
    form = b.form_of(b.profile())
    address = form["entity.address"]
    caplog.set_level(logging.INFO)
    with (
        live_server(create_portal_app(quick, clock=clock)) as url,
        httpx.Client(base_url=url, follow_redirects=False) as client,
    ):
        r = _login(client, who.username, who.password)
        page = client.get(r.headers["location"])
        client.post(
            "/password",
            data={
                "csrf_token": csrf_of(page.text),
                "current": who.password,
                "new": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
        token = csrf_of(client.get("/my/institution").text)
        with _row_locked(settings, who.application_id):
            r = client.post("/my/institution", data={**form, "csrf_token": token})
        assert r.status_code == 503
        assert "ok=saved" not in r.headers.get("location", "")
        assert "本次操作未生效" in r.text and "50300" in r.text
        assert address in r.text  # the submitted form is shown again, filled in
        assert 'action="/my/institution"' in r.text
        assert _profile(settings, who.application_id) == {}
        # Once the lock is gone the same form saves.
        r = client.post(
            "/my/institution",
            data={**form, "csrf_token": csrf_of(client.get("/my/institution").text)},
        )
        assert r.status_code == 303 and r.headers["location"].endswith("?ok=saved")
    assert _profile(settings, who.application_id)["entity"]["address"] == address
    for record in caplog.records:
        logged = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        assert address not in logged and who.username not in logged, logged
    assert any("not committed" in rec.getMessage() for rec in caplog.records)


def _told(settings: Settings) -> tuple[int, int]:
    """(messages, queued e-mails) in the database."""

    async def work(session: AsyncSession) -> tuple[int, int]:
        messages = len((await session.scalars(select(Message.id))).all())
        mails = len((await session.scalars(select(Mail.id))).all())
        return messages, mails

    return b.run(settings, work)


def test_a_decision_that_cannot_commit_tells_nobody(settings: Settings, clock: FrozenClock) -> None:
    """The applicant's message and its e-mail are written in the decision's unit of work: a
    decision the database refuses leaves neither; the same decision once the lock is gone, both."""
    who = b.make_complete_applicant(settings, clock.now())
    b.submit(settings, who, clock.now())
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")

    async def address(session: AsyncSession) -> None:
        user = await session.scalar(select(PortalUser).where(PortalUser.role == "applicant"))
        assert user is not None
        user.email = "xinxike@hospital.example.cn"

    b.run(settings, address)
    before = _told(settings)  # the reviewer's message about the submission
    with refused_url() as relay:
        smtp = SmtpSettings(host="127.0.0.1", port=int(relay.rsplit(":", 1)[1]))
        quick = settings.model_copy(update={"lock_timeout_seconds": 0.5, "smtp": smtp})
        with (
            live_server(create_portal_app(quick, clock=clock)) as url,
            httpx.Client(base_url=url, follow_redirects=False) as client,
        ):
            _login(client, "reviewer1", PASSWORD)
            page = f"/applications/{who.application_id}"
            token = csrf_of(client.get(page).text)
            with _row_locked(settings, who.application_id):
                r = client.post(f"{page}/approve", data={"csrf_token": token})
            assert r.status_code == 503 and "ok=approved" not in r.headers.get("location", "")
            assert _told(settings) == before
            r = client.post(f"{page}/approve", data={"csrf_token": token})
            assert r.status_code == 303 and r.headers["location"].endswith("?ok=approved")
    assert _told(settings) == (before[0] + 1, before[1] + 1)
