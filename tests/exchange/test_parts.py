"""Small parts of the exchange domain: exchange ids, the rate limiter, column sizes, grouping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imsp.exchange.archive import (
    ID_SKEW,
    compress,
    id_time,
    id_window,
    new_exchange_id,
    restore,
)
from imsp.exchange.models import KEY_LENGTH, Record
from imsp.exchange.pg_writer import PgWriter, _Item
from imsp.exchange.ratelimit import SlidingWindow
from imsp.exchange.writer import ROLE_COLUMNS, Batch, LogEntry
from imsp.standard.model import load_standard

STD = load_standard()


def test_exchange_ids_are_uuid7_and_increase_within_a_process() -> None:
    now = datetime.now(UTC)
    ids = [new_exchange_id(now) for _ in range(5000)]  # one millisecond: the counter counts
    ids += [new_exchange_id(now + timedelta(microseconds=i * 300)) for i in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}


def test_an_exchange_id_carries_its_receipt_time_to_the_millisecond() -> None:
    at = datetime(2024, 3, 31, 16, 0, 0, 0, tzinfo=UTC)  # 2024-04-01 00:00:00.000 Beijing
    xid = new_exchange_id(at)
    assert id_time(xid) == at
    window = id_window(xid)
    assert window is not None and window[0] < at < window[1]
    # a clock stepping back a little keeps ids increasing, within the lookup window
    back = new_exchange_id(at - timedelta(milliseconds=200))
    assert back > xid
    t = id_time(back)
    assert t is not None and abs(t - (at - timedelta(milliseconds=200))) < ID_SKEW
    # one stepping back far (a corrected clock, a test's frozen one) is followed
    earlier = datetime(2024, 1, 5, 9, 0, tzinfo=UTC)
    assert id_time(new_exchange_id(earlier)) == earlier
    assert id_window(uuid.uuid4()) is None  # not made here: looked up everywhere


@pytest.mark.parametrize(
    "body", [b'\xef\xbb\xbf[{"a": "\xe4\xb8\xad"}]\n', b"  {}", b"[]", b"\n[1]"]
)
def test_archive_restores_bytes_exactly_whether_compressed_or_not(body: bytes) -> None:
    assert restore(compress(body)) == body
    assert restore(body) == body


def test_sliding_window_limits_failures_and_forgets_them() -> None:
    w = SlidingWindow(limit=3, window=60)
    for t in (0.0, 10.0, 20.0):
        assert w.retry_after("k", t) == 0
        w.fail("k", t)
    assert w.retry_after("k", 30.0) == 30  # until the failure at 0 s leaves the window
    assert w.retry_after("other", 30.0) == 0
    assert w.retry_after("k", 60.5) == 0


def test_sliding_window_memory_is_bounded() -> None:
    w = SlidingWindow(limit=2, window=60, max_keys=100)
    for n in range(1000):
        w.fail(f"addr-{n}", float(n))
    assert len(w._hits) <= 100


@pytest.mark.parametrize("ds", STD.ordered(), ids=lambda d: d.code)
def test_typed_columns_hold_every_value_the_standard_allows(ds: Any) -> None:
    paths = dict(ds.walk())
    for role, code in ds.columns.items():
        column = ROLE_COLUMNS[role]
        if column.kind == "text":
            f = paths[code]
            assert f.type == "string" and f.length is not None
            assert f.length <= Record.__table__.c[column.column].type.length, (ds.code, code)
        else:
            assert column.kind == "time" and paths[code].type in ("date", "datetime")
    longest_key = sum((paths[k].length or 20) for k in ds.key) + len(ds.key) - 1
    assert longest_key <= KEY_LENGTH


def test_group_commit_never_lets_a_later_request_overtake_an_earlier_one_on_a_key() -> None:
    # Queued: 1 {k}, 2 {k, m}, 3 {m}. 2 collides with 1 and waits; 3 shares m with 2, so it must
    # wait too — written before 2, its newer m would be replaced by 2's older one.
    def item(n: int, *keys: str) -> _Item:
        now = datetime.now(UTC)
        entry = LogEntry(new_exchange_id(now), now, 1, "a", "s", "d", "", 0, None, 200)
        rows = [{"i": i, "k": k, "d": {}} for i, k in enumerate(keys)]
        return _Item(entry, Batch(1, "d", "a", rows), float(n), None, frozenset(keys))  # type: ignore[arg-type]

    writer = PgWriter("postgresql://nobody@127.0.0.1:1/none")
    one, two, three = item(1, "k"), item(2, "k", "m"), item(3, "m")
    writer._pending.extend([one, two, three])
    assert writer._take() == [one]
    assert writer._take() == [two]
    assert writer._take() == [three]
