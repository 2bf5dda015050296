"""The outbox and its sender against the real exchange app: delivery, parking, outages, one sender."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from imsp.auth.service import IssuedCredential
from imsp.client import Client, Outbox, Sender
from imsp.config import ExchangeSettings, Settings
from tests.client.builders import sample, stored
from tests.client.conftest import BASE_URL
from tests.client.inprocess import InProcessTransport
from tests.support.live import refused_url


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db")


def test_drain_delivers_everything_and_parks_rejected_records_with_errors(
    sdk: Client, box: Outbox, exchange_settings: Settings
) -> None:
    patients = sample("patient", 12)
    patients[4]["sex"] = "9x"
    box.enqueue("uploadPatientFile", patients)
    box.enqueue("doctor", sample("doctor", 3))
    with Sender(box, sdk, batch_size=5) as sender:
        report = sender.drain()
    assert (report.delivered, report.parked, report.error) == (14, 1, None)
    status = box.status()
    assert status.total("delivered") == 14 and status.total("pending") == 0
    [parked] = box.parked()
    assert parked.record["sex"] == "9x" and parked.msg_code == -97
    assert any(e.field == "sex" for e in parked.errors)
    assert len(stored(exchange_settings, "patient")) == 11


def test_a_parked_record_fixed_and_retried_is_delivered(
    sdk: Client, box: Outbox, exchange_settings: Settings
) -> None:
    patients = sample("patient", 2)
    bad = dict(patients[1], sex="9x")
    box.enqueue("patient", [patients[0], bad])
    with Sender(box, sdk) as sender:
        sender.drain()
        [parked] = box.parked()
        assert box.retry(replacements={parked.id: patients[1]}) == 1
        assert sender.drain().delivered == 1
    assert box.parked() == []
    assert len(stored(exchange_settings, "patient")) == 2


def test_an_outage_keeps_records_pending_and_a_later_drain_delivers_them(
    sdk: Client, box: Outbox, credential: IssuedCredential, exchange_settings: Settings
) -> None:
    box.enqueue("patient", sample("patient", 6))
    with (
        refused_url() as down,  # the platform is unreachable
        Client(
            down, credential.app_id, credential.app_secret, retries=1, sleep=lambda s: None
        ) as c,
        Sender(box, c) as sender,
    ):
        report = sender.drain()
    assert report.error is not None and report.retryable and report.delivered == 0
    assert box.status().total("pending") == 6
    assert box.status().last_error is not None
    with Sender(box, sdk) as sender:
        assert sender.drain().delivered == 6
    assert len(stored(exchange_settings, "patient")) == 6


def test_only_one_sender_works_on_an_outbox_at_a_time(sdk: Client, box: Outbox) -> None:
    box.enqueue("patient", sample("patient", 2))
    with Sender(box, sdk) as first, Sender(Outbox(box.path), sdk) as second:
        assert first.drain().delivered == 2
        assert second.drain().busy
    with Sender(Outbox(box.path), sdk) as third:  # the first one let go
        assert not third.drain().busy


def test_wrong_credentials_stop_the_drain_without_touching_the_records(
    exchange: InProcessTransport, credential: IssuedCredential, box: Outbox
) -> None:
    box.enqueue("patient", sample("patient", 3))
    with (
        Client(BASE_URL, credential.app_id, "wrong", transport=exchange) as c,
        Sender(box, c) as sender,
    ):
        report = sender.drain()
    assert not report.retryable and "40004" in (report.error or "")
    assert box.status().total("pending") == 3 and box.status().total("parked") == 0


class TestBodyLimit:
    @pytest.fixture
    def exchange_settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"exchange": ExchangeSettings(max_body_bytes=20_000)})

    def test_a_request_refused_as_a_whole_is_bisected_until_the_culprit_is_parked(
        self, sdk: Client, box: Outbox, exchange_settings: Settings
    ) -> None:
        patients = sample("patient", 8)
        patients[5]["address"] = "长" * 10_000  # this record alone exceeds the body limit
        box.enqueue("patient", patients)
        with Sender(box, sdk, batch_size=8) as sender:
            report = sender.drain()
        assert report.delivered == 7 and report.parked == 1
        [parked] = box.parked()
        assert parked.msg_code == 41300 and parked.key == patients[5]["patientId"]
        assert len(stored(exchange_settings, "patient")) == 7


def test_run_loop_delivers_what_arrives_and_stops_on_request(sdk: Client, box: Outbox) -> None:
    stop = threading.Event()
    reports: list[int] = []
    with Sender(box, sdk) as sender:
        thread = threading.Thread(
            target=sender.run,
            args=(stop,),
            kwargs={"idle": 0.01, "on_report": lambda r: reports.append(r.delivered)},
        )
        thread.start()
        box.enqueue("patient", sample("patient", 4))
        for _ in range(500):
            if box.status().total("delivered") == 4:
                break
            stop.wait(0.01)
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert box.status().total("delivered") == 4 and sum(reports) == 4
