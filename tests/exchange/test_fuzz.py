"""Malformed input never yields a 500 and never stores anything partial (hypothesis).

Every upload service gets: random bytes, invalid UTF-8, NUL bytes, deep nesting, JSON of the wrong
shape, and generated records with fields replaced by wrong types, huge strings and nested junk.
The answer is always a clear gateway code (4xx) or a receipt; and what is stored is exactly what
the receipt says was stored — never a part of a refused request or of a rejected record.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imsp.standard.model import load_standard
from tests.exchange.builders import record
from tests.exchange.conftest import Peek

PATHS = [d.path for d in load_standard().ordered()]
DATASET_OF = {d.path: d.code for d in load_standard().ordered()}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(min_size=5000, max_size=20000),  # huge strings
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def mutated_record(draw: st.DrawFn, path: str) -> Any:
    code = DATASET_OF[path]
    rec = record(code, n=0 if code == "organization" else draw(st.integers(0, 5)))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        field = draw(st.sampled_from(sorted(rec)))
        if action == "replace":
            rec[field] = draw(json_values)
        elif action == "delete":
            rec.pop(field, None)
        else:
            rec[draw(st.text(min_size=1, max_size=30))] = draw(json_values)
    return rec


def _dumps(value: Any) -> bytes:
    """JSON with integers of any size (orjson stops at 64 bits; clients need not)."""
    return json.dumps(value, ensure_ascii=False).encode()


def _deep(n: int) -> bytes:
    return b'[{"a":' * n + b"1" + b"}]" * n


@st.composite
def bodies(draw: st.DrawFn, path: str) -> bytes:
    kind = draw(st.sampled_from(["bytes", "utf8-broken", "nul", "deep", "json", "records"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        return _deep(draw(st.integers(100, 3000)))
    if kind == "json":
        return _dumps(draw(json_values))
    if kind == "records":
        return _dumps(draw(st.lists(mutated_record(path), min_size=1, max_size=4)))
    # Junk inside a string value of otherwise valid records (where a naive server would store it)
    # or anywhere at all.
    code = DATASET_OF[path]
    good = orjson.dumps([record(code, n=0 if code == "organization" else draw(st.integers(0, 5)))])
    starts = [m.end() for m in re.finditer(rb'":"', good)]
    at = draw(st.sampled_from(starts) | st.integers(0, len(good)))
    junk = b"\xff\xfe" if kind == "utf8-broken" else draw(st.sampled_from([b"\x00", b"\\u0000"]))
    return good[:at] + junk + good[at:]


def _stored_versions(peek: Peek) -> int:
    return peek.count("record_version")


@FUZZ
@given(data=st.data())
def test_no_input_makes_a_500_or_a_partial_write(
    exchange_client: TestClient, auth: dict[str, str], peek: Peek, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(PATHS))
    body = data.draw(bodies(path))
    before = _stored_versions(peek)
    r = exchange_client.post(
        path, content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code in (200, 400, 413), (r.status_code, r.text[:300])
    answer = r.json()
    assert set(answer) == {"code", "msg", "data"} and answer["msg"]
    new_versions = _stored_versions(peek) - before
    if r.status_code != 200:
        assert answer["code"] in (40000, 40001, 41301) and answer["data"] is None
        assert new_versions == 0
        return
    results = answer["data"]["results"]
    assert [x["index"] for x in results] == list(range(answer["data"]["total"]))
    for x in results:
        assert (x["msgCode"] < 0) == bool(x["errors"]), x
        assert all(e["field"] is not None and e["code"] and e["msg"] for e in x["errors"])
    fresh = [
        x
        for x in results
        if x["msgCode"] == 200 or (x["msgCode"] == 201 and "未变化" not in x["msg"])
    ]
    assert new_versions == len(fresh)
    assert answer["data"]["success"] == sum(1 for x in results if x["msgCode"] > 0)


@FUZZ
@given(
    path=st.sampled_from(PATHS),
    headers=st.dictionaries(
        st.sampled_from(["accessToken", "Authorization", "Content-Type", "Content-Length"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        max_size=3,
    ),
)
def test_no_header_combination_makes_a_500(
    exchange_client: TestClient, path: str, headers: dict[str, str]
) -> None:
    r = exchange_client.post(path, content=b"[]", headers=headers)
    assert r.status_code in (400, 401, 413, 415, 429), (r.status_code, r.text[:200])
    assert r.json()["data"] is None
