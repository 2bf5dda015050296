"""Sign-in throttling shared by several portal nodes (``IMSP_REDIS_URL``): failures spread over
two nodes count as one, a refused attempt on one node is refused on the other, and the
operator's password reset on one node lifts the delays on both. Each node alone would still
admit every attempt below (each sees only half of the failures)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imsp.app import create_portal_app
from imsp.auth.models import PortalUser
from imsp.clock import FrozenClock
from imsp.config import PortalSettings, Settings
from tests.portal.client import login, post_form, sign_in
from tests.qualification import builders as b

PASSWORD = "Passw0rd-123"


def _nodes(settings: Settings, clock: FrozenClock, **portal: object) -> tuple[TestClient, ...]:
    quick = settings.model_copy(
        update={"portal": PortalSettings(login_tarpit_seconds=0, **portal)}  # type: ignore[arg-type]
    )
    return tuple(
        TestClient(create_portal_app(quick, clock=clock), client=("10.20.30.40", 5000))
        for _ in range(2)
    )


@pytest.fixture
def address_limited(
    redis_settings: Settings, clock: FrozenClock
) -> Iterator[tuple[TestClient, ...]]:
    a, b_ = _nodes(redis_settings, clock, login_free_failures_per_address=4)
    with a, b_:
        yield a, b_


def test_failures_spread_over_two_portal_nodes_meet_one_throttle(
    address_limited: tuple[TestClient, TestClient],
) -> None:
    a, b_ = address_limited
    statuses = [login((a, b_)[i % 2], f"user{i}", "wrong-password-1").status_code for i in range(8)]
    assert statuses == [401] * 4 + [429] * 4


def _user_id(settings: Settings, username: str) -> int:
    async def work(session: AsyncSession) -> int:
        found = await session.scalar(select(PortalUser.id).where(PortalUser.username == username))
        assert found is not None
        return int(found)

    return b.run(settings, work)


def test_a_password_reset_on_one_node_lifts_the_delays_on_the_other(
    redis_settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(redis_settings, clock.now(), username="operator1", role="operator")
    who = b.make_applicant(redis_settings, clock.now())
    a, b_ = _nodes(redis_settings, clock, login_free_failures_per_account=1)
    with a, b_:
        login(a, who.username, "wrong-password-1")
        wait = login(b_, who.username, "wrong-password-1")
        assert wait.status_code == 429 and re.search(r"请 \d+ 秒后再试", wait.text)
        sign_in(a, "operator1", PASSWORD)
        r = post_form(
            a, f"/accounts/{_user_id(redis_settings, who.username)}/reset", page="/accounts"
        )
        password = re.search(r'id="issued-password">([^<]+)<', r.text)
        assert password, r.text
        assert login(b_, who.username, password.group(1)).url.path == "/password"
