"""Pure value checks used by the validator, the JSON Schema format checker and the SDK.

Every function takes a ``str`` and answers without raising: the validator calls them on the happy
path for every record, so they avoid exceptions, regular expressions where slicing is enough, and
``datetime.strptime`` (about ten times slower than the slicing below). Answers for dates,
times, ID numbers and credit codes are memoised (bounded): real uploads repeat the same days,
doctors and institution over and over.

Clauses enforced here (数据标准 V1.0 §通用约定):

* dates ``yyyy-MM-dd`` and datetimes ``yyyy-MM-dd HH:mm:ss``, Beijing time, real calendar dates;
* resident ID numbers, GB 11643-1999 (18 characters, ISO 7064 MOD 11-2 check character);
* unified social credit codes, GB 32100-2015 (18 characters, weighted MOD 31 check character);
* mobile / fixed-line phone numbers, postcodes, http(s) URLs, SHA-256 digests and
  ``yyyy-MM-dd HH:mm-HH:mm`` work-time slots.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from operator import mul
from typing import Final

__all__ = [
    "DAYS_IN_MONTH",
    "EARLIEST_YEAR",
    "check_digit_gb11643",
    "check_digit_gb32100",
    "decimal_digits",
    "idcard_birthday",
    "idcard_sex",
    "is_date",
    "is_datetime",
    "is_decimal_string",
    "is_early",
    "is_idcard",
    "is_mobile",
    "is_phone",
    "is_postcode",
    "is_sha256",
    "is_time",
    "is_url",
    "is_uscc",
    "is_workdate",
    "memo_of",
]

DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: Business dates and times (数据标准 V1.0 §通用约定, as decided by the platform): no date before
#: 1900-01-01 is a real event of internet medical care, and every storage layer — SQLite's UTC
#: conversion of Beijing time included — holds every instant from there on.
EARLIEST_YEAR: Final = 1900
_ASCII_DIGITS: Final = frozenset("0123456789")

# Memo of calendar validity for ``yyyy-MM-dd`` strings. Bounded so a hostile upload of millions of
# distinct dates cannot grow it without limit; cleared wholesale when full (cheap and simple).
_MEMO_LIMIT: Final = 50_000
_date_memo: dict[str, bool] = {}
_time_memo: dict[str, bool] = {}
_idcard_memo: dict[str, bool] = {}  # doctors' and patients' numbers recur in every upload
_uscc_memo: dict[str, bool] = {}  # organID is the same in every record of an institution


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _date_uncached(s: str, earliest: int = EARLIEST_YEAR) -> bool:
    if s[4] != "-" or s[7] != "-":
        return False
    y, m, d = s[0:4], s[5:7], s[8:10]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        return False
    year, month, day = int(y), int(m), int(d)
    if year < earliest or not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and _is_leap(year):
        return day <= 29
    return day <= DAYS_IN_MONTH[month]


def _remember(memo: dict[str, bool], s: str, ok: bool) -> bool:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[s] = ok
    return ok


def is_date(s: str) -> bool:
    """``s`` is a real calendar date written ``yyyy-MM-dd`` (ASCII digits, year ≥
    :data:`EARLIEST_YEAR`)."""
    known = _date_memo.get(s)
    if known is not None:
        return known
    if len(s) != 10:
        return False
    return _remember(_date_memo, s, s.isascii() and _date_uncached(s))


def _minute_uncached(hm: str) -> bool:
    if hm[2] != ":" or not hm.isascii():
        return False
    h, m = hm[0:2], hm[3:5]
    return h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60


def is_time(t: str) -> bool:
    """``t`` is a clock time ``HH:mm:ss`` (00:00:00 … 23:59:59; no leap second).

    The memo holds ``HH:mm`` only (at most 1 440 valid entries); seconds are checked inline.
    """
    if len(t) != 8 or t[5] != ":":
        return False
    s = t[6:8]
    if not (s.isascii() and s.isdigit() and s < "60"):
        return False
    hm = t[:5]
    known = _time_memo.get(hm)
    if known is not None:
        return known
    return _remember(_time_memo, hm, _minute_uncached(hm))


def is_early(s: str) -> bool:
    """``s`` would be a valid ``date`` or ``datetime`` but for a year before
    :data:`EARLIEST_YEAR` — so the validator can say why it is refused."""
    if len(s) not in (10, 19) or not s.isascii() or s[:4] >= f"{EARLIEST_YEAR:04d}":
        return False
    if len(s) == 19 and (s[10] != " " or not is_time(s[11:])):
        return False
    return _date_uncached(s[:10], earliest=1)


def is_datetime(s: str) -> bool:
    """``s`` is ``yyyy-MM-dd HH:mm:ss`` with a real calendar date and clock time.

    No ``T`` separator, no fraction, no zone: 数据标准 V1.0 §通用约定 fixes Beijing time.
    """
    return len(s) == 19 and s[10] == " " and is_date(s[:10]) and is_time(s[11:])


def is_decimal_string(s: str) -> bool:
    """``s`` is a plain decimal numeral: optional ``-``, ASCII digits, optional ``.digits``.

    No exponent, no ``+``, no surrounding blanks, no thousands separators — the forms every HIS
    serialiser produces and every database column accepts.
    """
    if not s.isascii():
        return False
    body = s[1:] if s[:1] == "-" else s
    whole, dot, frac = body.partition(".")
    if not whole.isdigit():
        return False
    return not dot or frac.isdigit()


def decimal_digits(s: str) -> tuple[int, int] | None:
    """Integer-part and fraction-part digit counts of a decimal numeral, or ``None`` if ``s`` is
    not one. Leading zeros of the integer part and a lone ``0`` do not count (``0.50`` → (0, 2));
    trailing zeros of the fraction do (the sender stated that scale).

    Accepts the forms :func:`is_decimal_string` accepts plus Python's float ``repr`` with an
    exponent (``1e+20``, ``1.5e-07``) so JSON numbers can be measured via ``repr(float)``.
    """
    if not s.isascii():
        return None
    body = s[1:] if s[:1] == "-" else s
    mant, e, exp = body.partition("e")
    shift = 0
    if e:
        sign = exp[:1]
        digits = exp[1:] if sign in ("+", "-") else exp
        if not digits.isdigit():
            return None
        shift = -int(digits) if sign == "-" else int(digits)
    whole, dot, frac = mant.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()):
        return None
    if shift:
        digits = whole + frac
        point = len(whole) + shift
        if point <= 0:
            whole, frac = "0", "0" * -point + digits
        elif point >= len(digits):
            whole, frac = digits + "0" * (point - len(digits)), ""
        else:
            whole, frac = digits[:point], digits[point:]
        frac = frac.rstrip("0") if e else frac
    int_digits = len(whole.lstrip("0"))
    return int_digits, len(frac)


# --------------------------------------------------------------------------- GB 11643-1999

# ISO 7064 MOD 11-2 weights W_i = 2^(17-i) mod 11 for the 17 body digits (GB 11643-1999 §8.2).
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"


_ID_ZERO: Final = 48 * sum(_ID_WEIGHTS)  # Σ ord("0")·W_i, removed in one subtraction


def check_digit_gb11643(body: str) -> str:
    """The check character for 17 ASCII digits (caller guarantees the input shape)."""
    return _ID_CHECK[(sum(map(mul, body.encode("ascii"), _ID_WEIGHTS)) - _ID_ZERO) % 11]


def is_idcard(s: str) -> bool:
    """``s`` is an 18-character resident ID number (GB 11643-1999): 17 digits, a real birth date in
    positions 7–14, and the MOD 11-2 check character (``0``–``9`` or upper-case ``X``).

    Lower-case ``x`` is refused: the number is a join key (doctorCertID ↔ /uploadDoctor), so one
    spelling only. The administrative-division prefix is not checked (codes change every year).
    """
    known = _idcard_memo.get(s)
    if known is not None:
        return known
    if len(s) != 18:
        return False
    return _remember(_idcard_memo, s, _idcard_uncached(s))


def _idcard_uncached(s: str) -> bool:
    if not s.isascii():
        return False
    body = s[:17]
    if not body.isdigit():
        return False
    b = body[6:14]
    if not _date_uncached(f"{b[0:4]}-{b[4:6]}-{b[6:8]}", earliest=1):  # a birth date
        return False
    return check_digit_gb11643(body) == s[17]


def idcard_birthday(s: str) -> str:
    """Birth date ``yyyy-MM-dd`` encoded in an ID number (assumes :func:`is_idcard`)."""
    return f"{s[6:10]}-{s[10:12]}-{s[12:14]}"


def idcard_sex(s: str) -> str:
    """GB/T 2261.1 sex code in an ID number: ``"1"`` male (odd 17th digit), ``"2"`` female."""
    return "1" if (ord(s[16]) - 48) % 2 else "2"


# --------------------------------------------------------------------------- GB 32100-2015

# Code character set: digits and upper-case letters without I, O, Z, S, V (GB 32100-2015 §4.2).
_USCC_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE: Final = {c: i for i, c in enumerate(_USCC_CHARS)}
# Weights W_i = 3^(i-1) mod 31 (GB 32100-2015 附录 B).
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_digit_gb32100(body: str) -> str | None:
    """The check character for a 17-character USCC body, or ``None`` if a character is outside
    the code set."""
    total = 0
    for ch, w in zip(body, _USCC_WEIGHTS, strict=True):
        v = _USCC_VALUE.get(ch)
        if v is None:
            return None
        total += v * w
    return _USCC_CHARS[(31 - total % 31) % 31]


def is_uscc(s: str) -> bool:
    """``s`` is an 18-character unified social credit code with a valid GB 32100 check character."""
    known = _uscc_memo.get(s)
    if known is not None:
        return known
    if len(s) != 18:
        return False
    return _remember(_uscc_memo, s, check_digit_gb32100(s[:17]) == s[17])


def memo_of(check: Callable[[str], bool]) -> Mapping[str, bool]:
    """The bounded memo behind :func:`is_date` (``yyyy-MM-dd``), :func:`is_time` (its ``HH:mm``),
    :func:`is_idcard` or :func:`is_uscc`, for read-only lookups on a hot path: a string maps to
    ``True`` only once the check has accepted it; a miss means "ask the check"."""
    return _MEMOS[check]


# --------------------------------------------------------------------------- contact and misc

_FIXED_LINE: Final = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?", re.ASCII)
_URL: Final = re.compile(
    r"https?://(?:[A-Za-z0-9\-._~%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:[/?#][^\s]*)?",
    re.ASCII,
)


def is_mobile(s: str) -> bool:
    """Mainland mobile number: 11 digits ``1[3-9]xxxxxxxxx`` (no ``+86``, no blanks)."""
    return len(s) == 11 and s[0] == "1" and s[1] in "3456789" and s.isascii() and s.isdigit()


def is_phone(s: str) -> bool:
    """Mobile number, or fixed line ``0xx(x)-xxxxxxx(x)`` with optional ``-extension``."""
    if is_mobile(s):
        return True
    return s[:1] == "0" and _FIXED_LINE.fullmatch(s) is not None


def is_postcode(s: str) -> bool:
    """Six ASCII digits (邮政编码)."""
    return len(s) == 6 and s.isascii() and s.isdigit()


def is_url(s: str) -> bool:
    """An absolute ``http``/``https`` URL with a host and no whitespace."""
    return _URL.fullmatch(s) is not None


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def is_sha256(s: str) -> bool:
    """64 hexadecimal characters (either case)."""
    return len(s) == 64 and _HEX.issuperset(s)


def is_workdate(s: str) -> bool:
    """A work-time slot ``yyyy-MM-dd HH:mm-HH:mm`` with a real date and start < end."""
    if len(s) != 22 or s[10] != " " or s[16] != "-" or not is_date(s[:10]):
        return False
    start, end = s[11:16], s[17:22]
    return is_time(start + ":00") and is_time(end + ":00") and start < end


_MEMOS: Final[dict[Callable[[str], bool], dict[str, bool]]] = {
    is_date: _date_memo,
    is_time: _time_memo,
    is_idcard: _idcard_memo,
    is_uscc: _uscc_memo,
}
