"""Value checks: GB 11643 ID numbers, GB 32100 credit codes, dates, contact formats."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imsp.standard import checks

# Published examples: GB 11643-1999 itself prints the first two; the rest were checked by hand
# against the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 and the check string "10X98765432".
VALID_IDS = ["11010519491231002X", "440524188001010014", "11010119900307803X", "130102199003078371"]
# Codes of large, publicly listed enterprises (printed on their business licences).
VALID_USCC = ["91110000802100433B", "911100001000080343", "91310000775785552L"]


@pytest.mark.parametrize("number", VALID_IDS)
def test_published_id_numbers_are_valid(number: str) -> None:
    assert checks.is_idcard(number)


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002x",  # lower-case x: one spelling only (it is a join key)
        "110105194912310021",  # wrong check digit
        "11010519491331002X",  # month 13 (the check digit would be 9, birth date still wrong)
        "11010519490229002X",  # 1949 is not a leap year
        "1101051949123100",  # 16 characters
        "110105194912310020X",  # 19 characters
        "11010519491231002Ｘ",  # full-width X
        "１１010519491231002X",  # full-width digits
        "",
    ],
)
def test_malformed_id_numbers_are_invalid(number: str) -> None:
    assert not checks.is_idcard(number)


def test_birthday_and_sex_come_from_the_id_number() -> None:
    assert checks.idcard_birthday("11010519491231002X") == "1949-12-31"
    assert checks.idcard_sex("11010519491231002X") == "2"
    assert checks.idcard_sex("440524188001010014") == "1"


_birthdays = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2030, 12, 31))
_digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def _id_body(region: int, born: dt.date, seq: int) -> str:
    return f"{region:06d}{born:%Y%m%d}{seq:03d}"


@given(st.integers(110000, 659999), _birthdays, st.integers(0, 999))
def test_any_body_with_its_computed_check_digit_is_valid(
    region: int, born: dt.date, seq: int
) -> None:
    body = _id_body(region, born, seq)
    number = body + checks.check_digit_gb11643(body)
    assert checks.is_idcard(number)
    assert checks.idcard_birthday(number) == born.isoformat()
    assert checks.idcard_sex(number) == ("1" if seq % 2 else "2")


@given(st.integers(110000, 659999), _birthdays, st.integers(0, 999), st.integers(0, 17), _digits)
def test_any_single_character_change_is_detected(
    region: int, born: dt.date, seq: int, pos: int, new: str
) -> None:
    body = _id_body(region, born, seq)
    number = body + checks.check_digit_gb11643(body)
    if pos == 17 and new == number[17]:
        new = "X" if new != "X" else "0"
    changed = number[:pos] + new + number[pos + 1 :]
    if changed != number:
        assert not checks.is_idcard(changed)


@pytest.mark.parametrize("code", VALID_USCC)
def test_published_credit_codes_are_valid(code: str) -> None:
    assert checks.is_uscc(code)


@pytest.mark.parametrize(
    "code",
    [
        "91110000802100433A",  # wrong check character
        "91110000802I00433B",  # I is not in the code set
        "91110000802100433",  # 17 characters
        "91110000802100433b",  # lower case
        "",
    ],
)
def test_malformed_credit_codes_are_invalid(code: str) -> None:
    assert not checks.is_uscc(code)


_USCC_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@given(st.text(alphabet=_USCC_SET, min_size=17, max_size=17), st.integers(0, 16), st.data())
def test_credit_code_check_character_detects_any_single_substitution(
    body: str, pos: int, data: st.DataObject
) -> None:
    check = checks.check_digit_gb32100(body)
    assert check is not None and checks.is_uscc(body + check)
    new = data.draw(st.sampled_from([c for c in _USCC_SET if c != body[pos]]))
    changed = body[:pos] + new + body[pos + 1 :]
    assert not checks.is_uscc(changed + check)


@given(st.dates(min_value=dt.date(1, 1, 1)))
def test_date_check_agrees_with_the_calendar(day: dt.date) -> None:
    assert checks.is_date(day.isoformat()) == (day.year >= checks.EARLIEST_YEAR)


@given(st.text(alphabet="0123456789-", min_size=10, max_size=10))
def test_date_check_agrees_with_fromisoformat(text: str) -> None:
    try:
        day = dt.date.fromisoformat(text)
        expected = day.isoformat() == text and day.year >= checks.EARLIEST_YEAR
    except ValueError:
        expected = False
    assert checks.is_date(text) == expected


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-02-29 23:59:59", True),
        ("2023-02-29 00:00:00", False),
        ("2025-06-01 24:00:00", False),
        ("2025-06-01 23:60:00", False),
        ("2025-06-01 23:59:60", False),
        ("2025-06-01T10:00:00", False),
        ("2025-06-01 10:00:00.000", False),
        ("2025-06-01 10:00", False),
        ("2025-6-01 10:00:00", False),
    ],
)
def test_datetime_format(text: str, ok: bool) -> None:
    assert checks.is_datetime(text) is ok


@pytest.mark.parametrize(
    ("fn", "good", "bad"),
    [
        (
            checks.is_mobile,
            ["13800138000", "19912345678"],
            ["12800138000", "1380013800", "+8613800138000"],
        ),
        (
            checks.is_phone,
            ["13800138000", "0311-87654321", "031187654321", "010-1234567", "0311-87654321-801"],
            ["87654321", "0311-876", "0311 87654321", "13800138000-1"],
        ),
        (checks.is_postcode, ["050000"], ["05000", "0500001", "05000a"]),
        (
            checks.is_url,
            ["http://a.cn", "https://hosp.example.org:8443/x?y=1#z", "https://[::1]/"],
            ["ftp://a.cn", "https://", "https://a b.cn", "www.a.cn"],
        ),
        (checks.is_sha256, ["a" * 64, "AbC0" * 16], ["a" * 63, "g" * 64]),
        (
            checks.is_workdate,
            ["2025-06-01 08:00-12:00"],
            ["2025-06-01 12:00-08:00", "2025-06-01 08:00-24:00", "2025-06-31 08:00-12:00"],
        ),
        (
            checks.is_decimal_string,
            ["0", "-1", "12.30", "007"],
            ["", "-", "1.", ".5", "1e3", "+1", " 1"],
        ),
    ],
)
def test_format_checks(fn: object, good: list[str], bad: list[str]) -> None:
    assert callable(fn)
    assert all(fn(g) for g in good), good
    assert not any(fn(b) for b in bad), bad


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("0.50", (0, 2)),
        ("-123.4", (3, 1)),
        ("100", (3, 0)),
        ("1e+20", (21, 0)),
        ("1.5e-07", (0, 8)),
        ("1.2345678901234568e+17", (18, 0)),
        ("abc", None),
    ],
)
def test_decimal_digits_counts_integer_and_fraction_digits(
    text: str, digits: tuple[int, int] | None
) -> None:
    assert checks.decimal_digits(text) == digits
