"""Business dates before 1900 are refused per record, and no date can make an upload fail
(issue 16 item 6: on SQLite ``0001-01-01 00:00:00`` Beijing time overflowed into year 0 UTC and
sank the whole upload with 50000, unlogged)."""

from __future__ import annotations

from datetime import date, time

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from imsp.exchange.pg_writer import PgWriter
from imsp.exchange.sqlite_writer import SqliteWriter
from imsp.standard import checks
from imsp.standard.validate import validator_for
from tests.exchange.builders import record
from tests.exchange.conftest import Peek

EARLY = ["0001-01-01 00:00:00", "0001-01-01 07:59:59", "1899-12-31 23:59:59"]


@pytest.mark.parametrize("early", EARLY)
def test_a_batch_with_an_early_business_time_stores_the_good_records(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, early: str
) -> None:
    body = [
        record("patient", n=0),
        record("patient", n=1, createTime=early),
        record("patient", n=2),
    ]
    r = exchange_client.post("/uploadPatientFile", headers=auth, json=body)
    assert r.status_code == 200, r.text
    results = r.json()["data"]["results"]
    assert [x["msgCode"] for x in results] == [200, -96, 200]
    assert [e["code"] for e in results[1]["errors"]] == ["date_range"]
    assert "1900-01-01" in results[1]["errors"][0]["msg"]
    assert peek.count("record") == 2
    assert peek.rows(
        "SELECT code, total, success, fail FROM exchange_log WHERE service = 'uploadPatientFile'"
    ) == [(200, 3, 2, 1)]


@pytest.mark.parametrize("query", [{"dryRun": "true"}, {"atomic": "true"}])
def test_an_early_date_is_a_record_error_in_dry_runs_and_atomic_batches_too(
    exchange_client: TestClient, auth: dict[str, str], query: dict[str, str]
) -> None:
    body = [record("agreement", n=0, releaseDate="0001-01-01"), record("agreement", n=1)]
    r = exchange_client.post("/uploadAgreement", headers=auth, json=body, params=query)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["results"][0]["errors"][0]["code"] == "date_range"


def test_1900_is_the_first_year_accepted() -> None:
    assert checks.is_datetime("1900-01-01 00:00:00")
    assert checks.is_date("1900-01-01")
    assert not checks.is_date("1899-12-31")
    assert checks.is_early("1899-12-31") and checks.is_early("0001-01-01 00:00:00")
    assert not checks.is_early("1899-02-30")  # not a date at all: the ordinary format error
    verdict = validator_for("patient").check(record("patient", createTime="1899-12-31 23:59:59"))
    assert [(e.field, e.code) for e in verdict.errors] == [("createTime", "date_range")]


@given(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.times(),
)
def test_every_valid_business_time_converts_for_both_databases(day: date, at: time) -> None:
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d} {at:%H:%M:%S}"
    for value in (text, text[:10]):
        if checks.is_datetime(value) or checks.is_date(value):
            SqliteWriter.encode_time(value)
            PgWriter.encode_time(value)
