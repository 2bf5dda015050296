"""Ambiguous requests are refused, never guessed (issue 16 item 9): duplicate JSON keys, repeated
query flags and repeated token headers; and a receipt lists a bounded number of issues."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from imsp.exchange.receipts import MAX_LISTED
from tests.exchange.builders import ORG_B, record
from tests.exchange.conftest import Peek

URL = "/uploadPatientFile"
JSON = {"Content-Type": "application/json"}


def _with_duplicate(rec: dict[str, object], key: str, first: str) -> bytes:
    """``rec`` serialised with ``key`` written twice: first ``first``, then its own value."""
    head = orjson.dumps({key: first})[:-1]
    return head + b"," + orjson.dumps(rec)[1:]


def test_a_duplicate_key_is_refused_not_last_wins(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek
) -> None:
    rec = record("patient")
    body = b"[" + _with_duplicate(rec, "organID", ORG_B) + b"]"
    r = exchange_client.post(URL, headers={**auth, **JSON}, content=body)
    assert r.status_code == 400
    assert r.json()["code"] == 40006 and "organID" in r.json()["msg"]
    assert peek.count("record") == 0
    assert peek.rows(f"SELECT code FROM exchange_log WHERE service = '{URL[1:]}'") == [(40006,)]


def test_an_escaped_colon_cannot_hide_a_duplicate_key(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    rec = record("patient", address="x")
    body = orjson.dumps(rec)[:-1] + b',"address":"\\u003a"}'
    r = exchange_client.post(URL, headers={**auth, **JSON}, content=body)
    assert r.json()["code"] == 40006


def test_compact_bodies_take_the_fast_path_only_without_duplicates() -> None:
    """A body byte for byte equal to its re-serialisation skips the colon count; one that
    carries a duplicate (same value twice, so the colon-free text is unchanged) never equals
    it and is still found."""
    from imsp.exchange.edge import duplicate_key

    rec = record("patient")
    body = orjson.dumps([rec])
    assert duplicate_key(body, orjson.loads(body)) is None
    twice = b'[{"sex":"1",' + body[2:]  # "sex" written twice, the same value
    assert duplicate_key(twice, orjson.loads(twice)) == "sex"
    spaced = b'[{"sex": "1", "sex": "1"}]'
    assert duplicate_key(spaced, orjson.loads(spaced)) == "sex"


def test_colons_and_escaped_colons_in_values_are_not_duplicates(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    body = orjson.dumps(record("patient", address="a:b")).replace(b"a:b", b"a\\u003Ab:")
    r = exchange_client.post(URL, headers={**auth, **JSON}, content=body)
    assert r.json()["data"]["results"][0]["msgCode"] == 200, r.text


@pytest.mark.parametrize("query", ["dryRun=true&dryRun=false", "atomic=false&atomic=false"])
def test_a_repeated_query_flag_is_refused(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, query: str
) -> None:
    r = exchange_client.post(f"{URL}?{query}", headers=auth, json=record("patient"))
    assert r.status_code == 400 and r.json()["code"] == 40007
    assert peek.count("record") == 0


def test_repeated_token_headers_are_refused(exchange_client: TestClient, token: str) -> None:
    for headers in (
        [("accessToken", token), ("accessToken", token)],
        [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")],
    ):
        r = exchange_client.post(URL, headers=headers, json=record("patient"))
        assert r.status_code == 400 and r.json()["code"] == 40008


def test_a_repeated_app_id_is_refused(exchange_client: TestClient) -> None:
    r = exchange_client.get("/auth/accesstoken/create?appId=a&appId=b&appSecret=x")
    assert r.status_code == 400 and r.json()["code"] == 40007


def test_warnings_are_capped_per_record_and_the_rest_counted(
    exchange_client: TestClient, auth: dict[str, str]
) -> None:
    rec = record("patient") | {f"x{i}": 1 for i in range(50_000)}
    r = exchange_client.post(URL, headers=auth, json=rec)
    assert r.status_code == 200
    assert len(r.content) < 64 * 1024
    result = r.json()["data"]["results"][0]
    assert result["msgCode"] == 200
    assert len(result["warnings"]) == MAX_LISTED + 1
    assert result["warnings"][-1]["code"] == "more_issues"
    assert str(50_000 - MAX_LISTED) in result["warnings"][-1]["msg"]


@pytest.mark.parametrize("query", ["dryrun=true", "dryRun=TRUE", "dryRun=", "atomic=yes"])
def test_unknown_query_parameters_and_flag_values_are_refused(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, query: str
) -> None:
    """A misspelt ``dryrun`` ignored would store what the client meant only to check."""
    r = exchange_client.post(f"{URL}?{query}", headers=auth, json=record("patient"))
    assert r.status_code == 400 and r.json()["code"] == 40001
    assert peek.count("record") == 0
