"""Fixtures of the video tests: a test CA (and a second, unrelated one) and a small video library."""

from __future__ import annotations

import pytest

from imsp.client import videoservice as vs
from tests.video import builders as b


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> b.Pki:
    return b.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> b.Pki:
    return b.make_pki(tmp_path_factory.mktemp("other"), "other")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[vs.Recording]:
    where, index = b.library(tmp_path_factory.mktemp("videos"))
    return vs.load_recordings(where, index)
