"""The hospital-side commands end to end: click's runner against a real server on loopback."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.cli.main import cli
from imsp.client import validate as offline_check
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard import checks
from imsp.standard.demo import DEMO_ORG_CODE
from imsp.standard.mask import mask
from tests.client.builders import sample, stored
from tests.support.live import live_server


@pytest.fixture
def platform(settings: Settings, clock: FrozenClock) -> Iterator[str]:
    with live_server(create_exchange_app(settings, clock=clock)) as url:
        yield url


@pytest.fixture
def env(platform: str, credential: IssuedCredential, tmp_path: Path) -> dict[str, str]:
    return {
        "IMSP_CLIENT_BASE_URL": platform,
        "IMSP_CLIENT_APP_ID": credential.app_id,
        "IMSP_CLIENT_APP_SECRET": credential.app_secret,
        "IMSP_CLIENT_ORG_CODE": DEMO_ORG_CODE,
        "IMSP_CLIENT_OUTBOX": str(tmp_path / "outbox.db"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # never the developer's own config
    }


def imsp(env: dict[str, str], *args: str) -> Result:
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    return path


def _bad_idcard(record: dict[str, Any]) -> str:
    """The record's ID number with a wrong check digit."""
    good = record["patientCertID"]
    wrong = next(d for d in "0123456789X" if d != checks.check_digit_gb11643(good[:17]))
    return str(good[:17] + wrong)


def test_push_prints_a_summary_writes_rejected_records_and_exits_1(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    records = sample("patient", 5)
    records[1]["sex"] = "9x"
    records[3]["patientCertID"] = bad_id = _bad_idcard(records[3])
    rejected = tmp_path / "rejected.json"
    result = imsp(
        env, "push", "uploadPatientFile", str(_write(tmp_path / "p.json", records)),
        "--rejected", str(rejected),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert (
        "上传完成" in result.output and "拒绝原因" in result.output and "交换编号" in result.output
    )
    assert "value_set" in result.output and "sex" in result.output
    assert bad_id not in result.output  # ID numbers are masked on screen …
    assert mask(bad_id) in result.output
    saved = json.loads(rejected.read_text("utf-8"))
    assert [r["index"] for r in saved] == [1, 3]
    assert saved[1]["record"]["patientCertID"] == bad_id  # … but kept in the file to be fixed
    assert {e["field"] for e in saved[0]["errors"]} == {"sex"}
    assert len(stored(settings, "patient")) == 3


def test_push_reads_csv_and_jsonl(env: dict[str, str], tmp_path: Path, settings: Settings) -> None:
    records = sample("patient", 6)
    path = tmp_path / "p.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # as Excel saves "CSV UTF-8"
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        for r in records[:3]:
            writer.writerow({k: "" if v is None else v for k, v in r.items()})
    lines = tmp_path / "p.jsonl"
    lines.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records[3:]), "utf-8")
    assert imsp(env, "push", "patient", str(path)).exit_code == 0
    assert imsp(env, "push", "patient", str(lines)).exit_code == 0
    assert len(stored(settings, "patient")) == 6


def test_push_dry_run_stores_nothing(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    result = imsp(env, "push", "doctor", str(_write(tmp_path / "d.json", sample("doctor", 3))),
                  "--dry-run")  # fmt: skip
    assert result.exit_code == 0 and "试运行" in result.output
    assert stored(settings, "doctor") == []


def test_push_shows_a_progress_bar_on_long_runs(env: dict[str, str], tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", sample("patient", 12))
    result = imsp(env, "push", "patient", str(path), "--batch-size", "5")
    assert result.exit_code == 0
    assert "上传 uploadPatientFile" in result.stderr


def test_push_via_outbox_then_fix_and_retry_the_parked_record(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    records = sample("patient", 4)
    good_sex = records[2]["sex"]
    records[2]["sex"] = "9x"
    result = imsp(env, "push", "patient", str(_write(tmp_path / "p.json", records)), "--via-outbox")
    assert result.exit_code == 1 and "imsp outbox retry" in result.output

    status = imsp(env, "outbox", "status")
    assert status.exit_code == 0 and "已暂存" in status.output

    exported = tmp_path / "parked.json"
    assert imsp(env, "outbox", "parked", "--output", str(exported)).exit_code == 0
    items = json.loads(exported.read_text("utf-8"))
    assert len(items) == 1 and items[0]["errors"][0]["field"] == "sex"
    items[0]["record"]["sex"] = good_sex  # the person's fix
    exported.write_text(json.dumps(items, ensure_ascii=False), "utf-8")

    assert "1 条" in imsp(env, "outbox", "retry", "--fixed", str(exported)).output
    drained = imsp(env, "outbox", "drain")
    assert drained.exit_code == 0 and "本次送达 1 条" in drained.output
    assert len(stored(settings, "patient")) == 4


def test_validate_is_offline_and_exits_1_on_invalid_records(tmp_path: Path) -> None:
    env = {"IMSP_CLIENT_BASE_URL": "", "XDG_CONFIG_HOME": str(tmp_path)}  # no platform at all
    good = _write(tmp_path / "good.json", sample("prescription", 3))
    assert imsp(env, "validate", "uploadPrescriptionInfo", str(good)).exit_code == 0
    records = sample("prescription", 3)
    records[0]["recipeID"] = ""
    bad = _write(tmp_path / "bad.json", records)
    out = tmp_path / "rejected.jsonl"
    result = imsp(env, "validate", "prescription", str(bad), "--rejected", str(out))
    assert result.exit_code == 1 and "离线校验" in result.output
    assert json.loads(out.read_text("utf-8").splitlines()[0])["index"] == 0


def test_sample_prints_records_that_pass_the_standard(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    result = imsp(env, "sample", "uploadDoctor", "--count", "4", "--seed", "7")
    assert result.exit_code == 0
    records = json.loads(result.output)
    assert len(records) == 4 and offline_check("doctor", records).ok


def test_token_is_masked_unless_raw_is_asked(env: dict[str, str]) -> None:
    shown = imsp(env, "token")
    assert shown.exit_code == 0 and "有效期" in shown.output and "86400" in shown.output
    raw = imsp(env, "token", "--raw").output.strip()
    assert raw.startswith("hbt_") and raw not in shown.output


def test_selfcheck_passes_every_service(env: dict[str, str]) -> None:
    result = imsp(env, "selfcheck")
    assert result.exit_code == 0, result.output
    assert "全部 17 项通过" in result.output
    for service in ("uploadPatientFile", "uploadPrescriptionList", "uploadAgreement"):
        assert service in result.output


def test_selfcheck_fails_with_reasons_and_exits_1(env: dict[str, str]) -> None:
    result = imsp(env, "selfcheck", "--org", "91110000802100433B")  # not this credential's org
    assert result.exit_code == 1
    assert "未通过" in result.output and "-93" in result.output


def test_wrong_secret_exits_3_with_a_chinese_message_and_hint(env: dict[str, str]) -> None:
    result = imsp({**env, "IMSP_CLIENT_APP_SECRET": "wrong"}, "token")
    assert result.exit_code == 3
    assert "appId 与 appSecret 不匹配" in result.stderr and "处理建议" in result.stderr


def test_missing_connection_settings_exit_3_naming_the_variables(tmp_path: Path) -> None:
    result = imsp({"XDG_CONFIG_HOME": str(tmp_path)}, "token")
    assert result.exit_code == 3 and "IMSP_CLIENT_BASE_URL" in result.stderr
