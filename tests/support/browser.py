"""Debian's headless Chromium for the browser tests (never a downloaded browser): one launcher
and one rule for where screenshots go."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium keeps trying to reach the internet, which this network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=zh-CN",
]
#: On Linux Chromium takes its own language (the strings of native widgets: the file chooser's
#: 选择文件 / 未选择任何文件, validation bubbles) from the environment, not from ``--lang``; the
#: translations are Debian's chromium-l10n package (scripts/install-system-deps.sh --dev).
#: Only LANGUAGE (the language of messages): LANG stays as it is (C.UTF-8), since a locale
#: that is not installed would turn file names into ASCII and break uploads of 执业许可证.png.
CHROMIUM_ENV = {"LANGUAGE": "zh_CN"}


def artifacts_dir(request: pytest.FixtureRequest, area: str) -> Path:
    """``test-artifacts/<area>/<test module>/<test name>/``, emptied first."""
    module = Path(str(request.node.path)).with_suffix("").name
    where = Path(str(request.config.rootpath)) / "test-artifacts" / area / module
    where = where / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    return where


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A launched headless Chromium (Playwright's sync API); skips the test where Debian's
    chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install-system-deps.sh --dev)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, *extra_args],
            env={**os.environ, **CHROMIUM_ENV},
        )
        try:
            yield browser
        finally:
            browser.close()
