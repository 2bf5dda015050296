"""The board refuses an institution with too few or too poor records, naming each missing item;
the hospital sees the same board with ``imsp acceptance status``; channels are told apart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from imsp.acceptance import service
from imsp.acceptance.service import Who
from imsp.app import create_exchange_app
from imsp.auth.credentials import create_credential
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.client import Client
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.errors import BadRequest
from tests.acceptance.builders import NAME, ORG, deps, make_test_credential, records, run
from tests.support.live import live_server


@pytest.fixture
def platform(settings: Settings, clock: FrozenClock) -> Iterator[str]:
    with live_server(create_exchange_app(settings, clock=clock)) as url:
        yield url


@pytest.fixture
def cred(settings: Settings, clock: FrozenClock) -> IssuedCredential:
    return make_test_credential(settings, clock)


def institution_id(settings: Settings) -> int:
    return run(settings, lambda s: service.institution_by_code(s, ORG)).id


def apply(settings: Settings, clock: FrozenClock) -> Any:
    inst = institution_id(settings)
    return run(
        settings,
        lambda s: service.apply(
            s,
            institution_id=inst,
            who=Who("hospital", "applicant", inst),
            now=clock.now(),
            deps=deps(settings),
            internet_hospital="测试互联网医院",
            vendor="测试厂商",
        ),
    )


def test_too_few_and_too_poor_records_cannot_apply_and_each_missing_item_is_named(
    settings: Settings, clock: FrozenClock, platform: str, cred: IssuedCredential
) -> None:
    with Client(platform, cred.app_id, cred.app_secret) as sdk:
        sdk.upload("department", records("department", 12))
        sdk.upload("doctor", records("doctor", 3))
        poor = records("patient", 20)
        for r in poor[:5]:
            r["patientCertID"] = "130102199001011230"  # wrong check digit: rejected
        sdk.upload("patient", poor)
        orphans = records("register", 10)
        for r in orphans:
            r["patientId"] = "NO-SUCH-PATIENT"  # valid record, dangling reference
        sdk.upload("register", orphans)

    with pytest.raises(BadRequest) as refused:
        apply(settings, clock)
    missing = refused.value.data["missing"]
    joined = "\n".join(missing)
    # Counts: short by exactly what is needed; base data needs 10, others 50.
    assert "人员信息：已入库记录数：还差 7 条" in missing
    assert "患者基本信息：已入库记录数：还差 35 条" in missing
    assert not any(m.startswith("科室信息：已入库记录数") for m in missing)
    # Quality: 15 of 20 patients valid, every register's patient unknown.
    assert "患者基本信息：有效率：75.0% 低于 95%" in missing
    assert "预约挂号：关联完整率：0.0% 低于 98%" in missing
    # Services never called, and the interface items not seen yet.
    assert "处方信息" in joined and "尚未成功调用" in joined
    assert any(m.startswith("令牌续期") for m in missing)
    assert any(m.startswith("被拒记录修正后重传") for m in missing)
    assert any(m.startswith("问诊视频调阅") for m in missing)
    # Nothing was written by the refusal.
    inst = institution_id(settings)
    steps = run(settings, lambda s: service.timeline(s, institution_id=inst))
    assert steps == []


def test_hospital_kit_shows_the_board_with_its_token(
    settings: Settings, platform: str, cred: IssuedCredential, tmp_path: Any
) -> None:
    env = {
        "IMSP_CLIENT_BASE_URL": platform,
        "IMSP_CLIENT_APP_ID": cred.app_id,
        "IMSP_CLIENT_APP_SECRET": cred.app_secret,
        "IMSP_CLIENT_ORG_CODE": ORG,
        "IMSP_CLIENT_OUTBOX": str(tmp_path / "outbox.db"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    with Client(platform, cred.app_id, cred.app_secret) as sdk:
        sdk.upload("doctor", records("doctor", 3))
    out = CliRunner(env=env).invoke(cli, ["acceptance", "status"], catch_exceptions=False)
    assert out.exit_code == 1, out.output
    assert NAME in out.output and "未申请" in out.output
    assert "人员信息：已入库记录数：还差 7 条" in out.output
    as_json = CliRunner(env=env).invoke(cli, ["acceptance", "status", "--json"])
    board = orjson.loads(as_json.output)
    assert board["channel"] == "test" and board["green"] is False
    assert [p["key"] for p in board["parts"]] == ["interface", "data", "video"]
    doctor = next(i for i in board["parts"][1]["items"] if i["key"] == "records:doctor")
    assert doctor == {
        "key": "records:doctor",
        "label": "人员信息：已入库记录数",
        "threshold": "≥ 10 条",
        "measured": "3 条",
        "ok": False,
        "missing": "还差 7 条",
    }


def test_status_needs_a_valid_token(platform: str) -> None:
    import httpx

    r = httpx.get(platform + "/acceptance/status", headers={"accessToken": "hbt_nope"})
    assert r.status_code == 401 and r.json()["code"] == 40102


def test_channel_is_on_token_receipt_and_log_and_production_is_not_measured(
    settings: Settings, clock: FrozenClock, platform: str, cred: IssuedCredential
) -> None:
    prod = run(
        settings,
        lambda s: create_credential(
            s, org_code=ORG, institution_name=NAME, now=clock.now(), channel="production"
        ),
    )
    import httpx

    token = httpx.get(
        platform + "/auth/accesstoken/create",
        params={"appId": cred.app_id, "appSecret": cred.app_secret},
    ).json()["data"]
    assert token["channel"] == "test"
    receipt = httpx.post(
        platform + "/uploadDoctor",
        headers={"accessToken": token["accessToken"]},
        json=records("doctor", 2),
    ).json()["data"]
    assert receipt["channel"] == "test" and receipt["success"] == 2
    with Client(platform, prod.app_id, prod.app_secret) as sdk:
        assert sdk.upload("doctor", records("doctor", 6)[2:]).success == 4  # chunked, SDK

    from sqlalchemy import create_engine

    engine = create_engine(settings.sync_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT service, channel, chunked FROM exchange_log ORDER BY at, id")
        ).all()
    engine.dispose()
    assert ("uploadDoctor", "test", False) in [tuple(r) for r in rows]
    assert ("uploadDoctor", "production", True) in [tuple(r) for r in rows]

    inst = institution_id(settings)
    board = run(settings, lambda s: service.board_of(s, institution_id=inst, deps=deps(settings)))
    doctor = next(i for p in board.parts for i in p.items if i.key == "records:doctor")
    assert doctor.measured == "2 条"  # production uploads never count on the board

    purged = run(
        settings,
        lambda s: service.purge_test_data(
            s,
            institution_id=inst,
            who=Who("operator1", "operator"),
            now=clock.now(),
        ),
    )
    assert purged == 2
    left = run(settings, lambda s: service.board_of(s, institution_id=inst, deps=deps(settings)))
    doctor = next(i for p in left.parts for i in p.items if i.key == "records:doctor")
    assert doctor.measured == "0 条"
