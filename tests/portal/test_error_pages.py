"""Portal errors are pages for people, carrying the same catalogue code and message as the JSON
shape (STYLE §4); the health check stays JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from imsp.clock import FrozenClock
from imsp.config import Settings
from tests.portal.client import sign_in
from tests.qualification import builders as b


def test_error_pages_show_the_catalogue_code(
    portal_client: TestClient, settings: Settings, clock: FrozenClock
) -> None:
    b.make_user(settings, clock.now(), username="reviewer1", role="reviewer")
    missing = portal_client.get("/no-such-page")
    assert missing.status_code == 404 and "错误代码 40400" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    sign_in(portal_client, "reviewer1", "Passw0rd-123")
    forbidden = portal_client.get("/my/institution")
    assert forbidden.status_code == 403 and "错误代码 40300" in forbidden.text
    assert "当前账号无权访问此页面" in forbidden.text
    bad_id = portal_client.get("/applications/not-a-number")
    assert bad_id.status_code == 404 and "错误代码 40400" in bad_id.text
    wrong_method = portal_client.get("/logout")
    assert wrong_method.status_code == 405 and "错误代码 40500" in wrong_method.text
    assert portal_client.get("/healthz").json()["service"] == "portal"
