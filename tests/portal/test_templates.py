"""Templates need nothing the portal's Content-Security-Policy refuses.

The policy (``imsp.portal.pages``) allows styles and scripts from the portal itself only, so an
inline ``style=""`` attribute, an inline ``<script>`` or an ``on…=`` handler would be silently
ignored by the browser: the page would look or behave other than written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import imsp.portal

TEMPLATES = sorted((Path(imsp.portal.__file__).parent / "templates").glob("*.html"))
REFUSED = {
    "inline style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.S),
    "inline event handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.S),
    "inline script": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.S),
    "inline style element": re.compile(r"<style[\s>]"),
}


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_needs_nothing_the_csp_refuses(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    found = {what: rx.findall(text) for what, rx in REFUSED.items()}
    assert {what: hits for what, hits in found.items() if hits} == {}
