"""Small builders for the exchange tests: an institution with credentials, a token, valid records.

Records come from the Data Standard's test-data generator (``imsp.standard.sample``): valid,
realistic and consistent, for the institution asked for, with distinct business keys.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from fastapi.testclient import TestClient

from imsp.auth.credentials import create_credential
from imsp.auth.service import IssuedCredential
from imsp.clock import Clock
from imsp.config import Settings
from imsp.standard.model import Dataset, load_standard
from imsp.standard.sample import generate
from tests.support.database import run

#: Two syntactically valid USCCs (GB 32100 check digits) of fictitious institutions.
ORG_A = "12130000MB1A2B3C4R"
ORG_B = "91110000802100433B"
SEED = 4


def make_credential(
    settings: Settings, clock: Clock, org_code: str = ORG_A, name: str = "测试医院"
) -> IssuedCredential:
    return run(
        settings,
        lambda s: create_credential(s, org_code=org_code, institution_name=name, now=clock.now()),
    )


def get_token(client: TestClient, cred: IssuedCredential) -> str:
    r = client.get(
        "/auth/accesstoken/create", params={"appId": cred.app_id, "appSecret": cred.app_secret}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["data"]["accessToken"]
    return token


@lru_cache(maxsize=64)
def _generated(code: str, org_code: str, count: int) -> tuple[bytes, ...]:
    return tuple(orjson.dumps(r) for r in generate(code, count, seed=SEED, org_code=org_code))


def records(
    dataset: str | Dataset, count: int, org_code: str = ORG_A, start: int = 0
) -> list[dict[str, Any]]:
    """``count`` generated records (``imsp.standard.sample``) of ``dataset`` for ``org_code``,
    from the ``start``-th on: distinct business keys, valid, mutually consistent."""
    code = dataset.code if isinstance(dataset, Dataset) else load_standard().dataset(dataset).code
    made = _generated(code, org_code, max(start + count, 8))
    return [orjson.loads(r) for r in made[start : start + count]]


def record(
    dataset: str | Dataset, org_code: str = ORG_A, n: int = 0, **overrides: Any
) -> dict[str, Any]:
    """The ``n``-th generated record of ``dataset`` for ``org_code``, with ``overrides``."""
    return {**records(dataset, 1, org_code, n)[0], **overrides}


def revoke(settings: Settings, clock: Clock, app_id: str) -> None:
    from imsp.auth.credentials import revoke_credential

    run(settings, lambda s: revoke_credential(s, app_id=app_id, now=clock.now()))
