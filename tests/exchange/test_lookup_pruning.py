"""Looking a request up by its exchange id reads one month of the partitioned tables, not every
month ever kept: the id carries the request's receipt time (``archive.new_exchange_id``), and
every lookup by id adds the window it implies on the partition key (``queries._by_id``).

The plans are PostgreSQL's own (``EXPLAIN``) for the very statements ``imsp exchange show`` runs;
SQLite has no partitions, and the same lookups are checked to find their rows on both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from imsp.app import create_exchange_app
from imsp.auth.service import IssuedCredential
from imsp.clock import BEIJING, FrozenClock
from imsp.config import Settings
from imsp.exchange import archive, history, partitions
from imsp.standard.model import load_standard
from tests.exchange.builders import get_token, records
from tests.support.database import with_database

RX = load_standard().dataset("prescription")
#: A year of monthly partitions (2023: test_partitions needs 2024 without them); the request
#: arrives in the middle of it.
MONTHS = [partitions.add_months(date(2023, 1, 1), n) for n in range(12)]
AT = datetime(2023, 6, 15, 10, 0, tzinfo=BEIJING)


def _upload(settings: Settings, cred: IssuedCredential, at: datetime) -> uuid.UUID:
    with TestClient(create_exchange_app(settings, clock=FrozenClock(at))) as client:
        r = client.post(
            RX.path,
            content=orjson.dumps(records(RX, 2)),
            headers={"accessToken": get_token(client, cred), "Content-Type": "application/json"},
        )
    assert r.json()["code"] == 200, r.text
    return uuid.UUID(r.json()["data"]["exchangeId"])


def _show(settings: Settings, xid: uuid.UUID) -> tuple[history.Exchange | None, list[Any]]:
    """``imsp exchange show``'s use case, and every statement it ran (SQL, parameters)."""
    seen: list[Any] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    async def work(db: Any) -> history.Exchange | None:
        event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
        async with db.session() as s:
            return await history.show_exchange(s, exchange_id=xid, now=AT)

    return with_database(settings, work), seen


def _scanned(engine: Engine, statement: str, params: Any) -> set[str]:
    """The tables and partitions PostgreSQL's plan of ``statement`` reads."""
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar()
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return found


@pytest.fixture
def pg_engine(settings: Settings) -> Iterator[Engine]:
    if settings.is_sqlite:
        pytest.skip("partitions are a PostgreSQL feature; SQLite keeps one table each")
    engine = create_engine(settings.sync_url)
    with engine.begin() as conn:
        partitions.ensure(conn, now=AT, ahead=0, months=MONTHS)
    yield engine
    engine.dispose()


def test_show_by_exchange_id_reads_only_the_month_of_the_request(
    settings: Settings, cred: IssuedCredential, pg_engine: Engine
) -> None:
    xid = _upload(settings, cred, AT)
    found, statements = _show(settings, xid)
    assert found is not None and len(found.versions) == 2 and found.archived is not None

    by_id = [(s, p) for s, p in statements if "exchange_log" in s or "record_version" in s]
    assert len(by_id) >= 3  # the log row, its archived body, its versions
    for statement, params in by_id:
        read = {t for t in _scanned(pg_engine, statement, params) if t.startswith(("exchange_log", "record_version"))}  # fmt: skip
        assert read <= {"exchange_log_m202306", "record_version_m202306"}, read

    # the same lookup without the window (how it was) plans a probe of every month
    everywhere = _scanned(pg_engine, "SELECT at FROM exchange_log WHERE id = %(id)s", {"id": xid})
    months = {partitions.partition_name("exchange_log", m) for m in MONTHS}
    assert months <= everywhere  # (and any other month the database holds)
    assert "exchange_log_default" in everywhere


def test_a_request_at_a_month_boundary_is_found_in_its_month(
    settings: Settings, cred: IssuedCredential, pg_engine: Engine
) -> None:
    last_moment = datetime(2023, 7, 31, 23, 59, 59, 999000, tzinfo=BEIJING)
    xid = _upload(settings, cred, last_moment)
    assert archive.id_time(xid) == last_moment
    found, statements = _show(settings, xid)
    assert found is not None and found.log.at == last_moment and len(found.versions) == 2
    statement, params = next((s, p) for s, p in statements if "FROM exchange_log" in s)
    read = {t for t in _scanned(pg_engine, statement, params) if t.startswith("exchange_log")}
    assert read <= {"exchange_log_m202307", "exchange_log_m202308"}  # the window spans both


def test_lookups_by_id_find_requests_on_both_databases(
    settings: Settings, cred: IssuedCredential
) -> None:
    xid = _upload(settings, cred, AT)
    found, _ = _show(settings, xid)
    assert found is not None and found.log.id == xid and len(found.versions) == 2
    assert found.archived is not None and found.archived.intact
    unknown, _ = _show(settings, archive.new_exchange_id(AT))
    assert unknown is None


def test_ids_not_made_by_the_platform_are_looked_up_everywhere(settings: Settings) -> None:
    made_elsewhere = uuid.uuid4()
    assert archive.id_window(made_elsewhere) is None
    found, statements = _show(settings, made_elsewhere)
    assert found is None
    statement = next(s for s, _ in statements if "FROM exchange_log" in s)
    assert "exchange_log.at >=" not in statement  # no window: every partition is asked
