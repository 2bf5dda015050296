"""Test-channel data (联调数据) is stored and traced like production data and measured on the
board, but never counted in the province's findings queue, dashboards or data-quality figures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from imsp.acceptance import service
from imsp.acceptance.quality import LogQuality, RollupQuality
from imsp.app import create_exchange_app
from imsp.auth.credentials import create_credential
from imsp.client import Client
from imsp.clock import FrozenClock
from imsp.config import Settings
from imsp.standard.model import load_standard
from imsp.storage.db import Database
from imsp.supervision import queries
from imsp.supervision.rollup_models import FindingDay, QualityDay
from imsp.supervision.rollups import recompute, refresh_rollups
from imsp.supervision.sweep import sweep
from tests.acceptance.builders import NAME, ORG, make_test_credential, records, run
from tests.client.inprocess import InProcessTransport

OTHER = "91110000802100433B"


@pytest.fixture
def exchange(settings: Settings, clock: FrozenClock) -> Iterator[InProcessTransport]:
    with InProcessTransport(create_exchange_app(settings, clock=clock)) as transport:
        yield transport


def orphan_appraisals(org: str, n: int) -> list[dict[str, object]]:
    """Valid appraisals whose evaluated business was never reported (R44, a violation)."""
    return records("appraise", 10, org)[:n]


async def supervise(settings: Settings, clock: FrozenClock) -> None:
    db = Database(settings)
    try:
        # No grace period: a missing referenced business is a violation at once (R44).
        await sweep(db, now=clock.now(), grace=timedelta(0))
    finally:
        await db.dispose()


def test_test_channel_findings_and_quality_stay_out_of_the_province(
    settings: Settings, clock: FrozenClock, exchange: InProcessTransport
) -> None:
    test = make_test_credential(settings, clock)
    prod = run(
        settings,
        lambda s: create_credential(
            s, org_code=OTHER, institution_name="正式医院", now=clock.now(), channel="production"
        ),
    )
    with Client("http://x.test", test.app_id, test.app_secret, transport=exchange) as sdk:
        assert sdk.upload("appraise", orphan_appraisals(ORG, 3)).success == 3
    with Client("http://x.test", prod.app_id, prod.app_secret, transport=exchange) as sdk:
        assert sdk.upload("appraise", orphan_appraisals(OTHER, 2)).success == 2
    asyncio.run(supervise(settings, clock))
    test_id = run(settings, lambda s: service.institution_by_code(s, ORG)).id
    prod_id = run(settings, lambda s: service.institution_by_code(s, OTHER)).id

    # Findings: evaluated on both, but the regulator's queue and counts see production only.
    province = run(settings, lambda s: queries.list_findings(s, filters=queries.FindingFilter()))
    assert {f.institution_id for f in province.rows} == {prod_id}
    everything = run(
        settings, lambda s: queries.list_findings(s, filters=queries.FindingFilter(channel=None))
    )
    assert {f.institution_id for f in everything.rows} == {prod_id, test_id}
    open_test = run(
        settings,
        lambda s: queries.count_open(
            s, institution_id=test_id, channel="test", severity="violation"
        ),
    )
    expected = [
        f for f in everything.rows if f.institution_id == test_id and f.severity == "violation"
    ]
    assert open_test == len(expected) >= 3
    by_rule = run(settings, lambda s: queries.count_open_by_rule(s))
    assert sum(by_rule.values()) == province.total

    # Rollups: incremental and full recomputation both keep the channels apart.
    async def rollup_rows(s: object) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        from sqlalchemy.ext.asyncio import AsyncSession

        assert isinstance(s, AsyncSession)
        quality = (
            await s.execute(
                select(QualityDay.channel, QualityDay.institution_id, QualityDay.accepted).where(
                    QualityDay.dataset == "appraise"
                )
            )
        ).all()
        findings = (await s.execute(select(FindingDay.channel, FindingDay.institution_id))).all()
        return sorted((c, i, a) for c, i, a in quality), sorted({(c, i) for c, i in findings})

    run(settings, lambda s: refresh_rollups(s, now=clock.now()))
    incremental = run(settings, rollup_rows)
    assert incremental[0] == sorted([("production", prod_id, 2), ("test", test_id, 3)])
    assert incremental[1] == sorted([("production", prod_id), ("test", test_id)])
    run(settings, lambda s: recompute(s, now=clock.now()))
    assert run(settings, rollup_rows) == incremental

    # Purging the institution's test data leaves its findings on the test channel.
    run(
        settings,
        lambda s: service.purge_test_data(
            s, institution_id=test_id, who=service.Who("operator1", "operator"), now=clock.now()
        ),
    )
    province_after = run(
        settings, lambda s: queries.list_findings(s, filters=queries.FindingFilter())
    )
    assert {f.institution_id for f in province_after.rows} == {prod_id}
    assert NAME  # the test institution keeps its name and log for the trace


def test_rollup_quality_counts_agree_with_the_boards_own_measurement(
    settings: Settings, clock: FrozenClock, exchange: InProcessTransport
) -> None:
    test = make_test_credential(settings, clock)
    with Client("http://x.test", test.app_id, test.app_secret, transport=exchange) as sdk:
        sdk.upload("doctor", records("doctor", 12))
        patients = records("patient", 8)
        patients[0]["patientCertID"] = "130102199001011230"  # rejected
        sdk.upload("patient", patients)
        clock.advance(days=1)
        sdk.upload("patient", records("patient", 8)[:1])  # corrected, the next day
    inst = run(settings, lambda s: service.institution_by_code(s, ORG)).id
    run(settings, lambda s: refresh_rollups(s, now=clock.now()))
    live = run(
        settings,
        lambda s: LogQuality(load_standard()).per_dataset(s, institution_id=inst, channel="test"),
    )
    rolled = run(
        settings, lambda s: RollupQuality().per_dataset(s, institution_id=inst, channel="test")
    )
    assert set(live) == set(rolled) == {"doctor", "patient"}
    for ds in live:
        a, b = live[ds], rolled[ds]
        assert (a.requests, a.received, a.accepted, a.rejected, a.stored) == (
            b.requests,
            b.received,
            b.accepted,
            b.rejected,
            b.stored,
        ), ds
        assert a.validity == b.validity
    assert live["patient"].stored == 8 and live["patient"].rejected == 1
    production = run(
        settings,
        lambda s: RollupQuality().per_dataset(s, institution_id=inst, channel="production"),
    )
    assert production == {}
