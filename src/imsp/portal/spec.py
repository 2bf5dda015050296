"""``/spec``: the published interface spec (《数据接口规范》) as one HTML page, open to everyone.

The page is rendered once per process from the Data Standard (:func:`imsp.standard.spec.
render_html`); it is public — hospitals code against it before they have an account. Its only
style is an inline stylesheet, allowed by hash in the page's own Content-Security-Policy (the
portal's default policy allows no inline style); it has no script.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from imsp.standard import spec


def _policy() -> str:
    return (
        f"default-src 'none'; style-src {spec.css_sha256()}; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


async def spec_page(_: Request) -> Response:
    return Response(
        spec.render_html(),
        media_type="text/html; charset=utf-8",
        headers={
            "content-security-policy": _policy(),
            "cache-control": "public, max-age=3600",
        },
    )


def install(app: FastAPI) -> None:
    """Register ``GET /spec`` on the portal app (call from ``imsp.portal.pages.install``)."""
    app.add_api_route("/spec", spec_page, methods=["GET"], include_in_schema=False, name="spec")
