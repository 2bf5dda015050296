"""The portal serves the published interface spec at /spec, to anyone, with its own style policy."""

from __future__ import annotations

from fastapi.testclient import TestClient

from imsp.standard import spec


def test_portal_serves_spec_to_anonymous_visitors(portal_client: TestClient) -> None:
    r = portal_client.get("/spec", follow_redirects=False)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "河北省互联网医疗服务监管平台数据接口规范" in r.text
    assert "/uploadPrescriptionInfo" in r.text
    # The portal's guard must not replace the page's own policy, which allows its inline style.
    assert spec.css_sha256() in r.headers["content-security-policy"]
    assert (
        "http://" not in r.text.split("<body", 1)[0]
        and "https://" not in r.text.split("<body", 1)[0]
    )


def test_every_portal_page_links_to_the_spec(portal_client: TestClient) -> None:
    r = portal_client.get("/login")
    assert r.status_code == 200
    assert 'href="/spec"' in r.text
