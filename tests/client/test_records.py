"""Reading records from files, business keys and the streamed body."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from imsp.client import InputError
from imsp.client.records import JsonArrayBody, business_key, dataset, read_records
from imsp.standard.model import load_standard
from imsp.standard.validate import validator_for
from tests.client.builders import sample


@pytest.mark.parametrize("code", [d.code for d in load_standard().ordered()])
def test_business_key_is_the_validators(code: str) -> None:
    ds = dataset(code)
    records = sample(code, 3)
    validator = validator_for(ds)
    assert [business_key(ds, r) for r in records] == [validator.check(r).key for r in records]


def test_business_key_escapes_the_separator_like_the_validator() -> None:
    ds = dataset("prescription_item")
    a = {**sample("prescription_item", 1)[0], "recipeID": "R1|X", "recipeDetailId": "Y"}
    b = {**a, "recipeID": "R1", "recipeDetailId": "X|Y"}
    assert business_key(ds, a) != business_key(ds, b)
    assert business_key(ds, a) == validator_for(ds).check(a).key == "R1\\|X|Y"


def test_csv_cells_are_typed_from_the_standard(tmp_path: Path) -> None:
    """payment: ``age`` is an int, ``items`` a list (JSON text in the cell), fees decimals."""
    path = tmp_path / "pay.csv"
    path.write_text(
        '\ufeffpayId,age,items,totalFee\nPAY1,42,"[{""n"": 1}]",12.30\nPAY2,,,\n', "utf-8"
    )
    rows = read_records(path, dataset("uploadPayment"))
    assert rows[0] == {"payId": "PAY1", "age": 42, "items": [{"n": 1}], "totalFee": "12.30"}
    assert rows[1] == {"payId": "PAY2", "age": "", "items": [], "totalFee": ""}


def test_json_file_may_hold_one_object_or_an_array(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"patientId": "P1"}), "utf-8")
    assert read_records(one, dataset("patient")) == [{"patientId": "P1"}]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"a": 1}\n{oops}\n', "第 2 行"),
        ("bad.json", "[1, 2", "不是合法的 JSON"),
        ("bad.txt", "x", "不支持的文件类型"),
        ("bad.csv", "a,b\n1,2,3\n", "列数多于表头"),
    ],
)
def test_unreadable_input_is_an_input_error_naming_the_place(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, "utf-8")
    with pytest.raises(InputError, match=message):
        read_records(path, dataset("patient"))


def test_body_is_a_json_array_in_chunks_and_can_be_sent_again() -> None:
    records = [{"i": i, "text": "长" * 1000} for i in range(100)]
    body = JsonArrayBody(records)
    chunks = list(body)
    assert len(chunks) > 1  # streamed, not one string
    assert orjson.loads(b"".join(chunks)) == records
    assert b"".join(body) == b"".join(chunks)  # a retry or a token resend sends it again
