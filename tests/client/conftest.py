"""Fixtures of the SDK tests: the real exchange app (in process) and a credential for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imsp.app import create_exchange_app
from imsp.auth.credentials import create_credential
from imsp.auth.service import IssuedCredential
from imsp.client import Client
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard.demo import DEMO_ORG_CODE, DEMO_ORG_NAME
from tests.client.inprocess import InProcessTransport
from tests.support.database import run

BASE_URL = "http://exchange.test"


def make_credential(
    settings: Settings, clock: FrozenClock, org_code: str = DEMO_ORG_CODE
) -> IssuedCredential:
    """An appId/appSecret for ``org_code`` (the institution is created if new)."""

    return run(
        settings,
        lambda s: create_credential(
            s, org_code=org_code, institution_name=DEMO_ORG_NAME, now=clock.now()
        ),
    )


@pytest.fixture
def credential(settings: Settings, clock: FrozenClock) -> IssuedCredential:
    return make_credential(settings, clock)


@pytest.fixture
def exchange_settings(settings: Settings) -> Settings:
    """The platform's settings; a test module overrides this fixture to change them."""
    return settings


@pytest.fixture
def exchange(exchange_settings: Settings, clock: FrozenClock) -> Iterator[InProcessTransport]:
    """The real exchange app, served in process to the SDK's httpx client."""
    with InProcessTransport(create_exchange_app(exchange_settings, clock=clock)) as transport:
        yield transport


@pytest.fixture
def sleeps() -> list[float]:
    """What the SDK would have slept (retries), recorded instead of waited."""
    return []


@pytest.fixture
def sdk(
    exchange: InProcessTransport, credential: IssuedCredential, sleeps: list[float]
) -> Iterator[Client]:
    with Client(
        BASE_URL,
        credential.app_id,
        credential.app_secret,
        transport=exchange,
        sleep=sleeps.append,
    ) as client:
        yield client
