"""Contract tests: the real SDK against the real exchange app, in process, for every service."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from imsp.auth.service import IssuedCredential
from imsp.client import (
    Client,
    RequestRejected,
    UnknownDataset,
    ValidationFailed,
)
from imsp.client import validate as offline_check
from imsp.clock import FrozenClock
from imsp.config import ExchangeSettings, Settings
from imsp.standard.model import load_standard
from tests.client.builders import sample, stored
from tests.client.conftest import BASE_URL
from tests.client.inprocess import InProcessTransport

DATASETS = [d.code for d in load_standard().ordered()]


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_service_accepts_sample_data_dry_run_then_real_then_unchanged(
    sdk: Client, exchange_settings: Settings, dataset: str
) -> None:
    ds = load_standard().datasets[dataset]
    records = sample(dataset, 5)
    n = len(records)  # one organisation per institution; the items of 5 prescriptions

    dry = sdk.upload(ds.service, records, dry_run=True)
    assert dry.ok, dry.rejected
    assert [r.msg_code for r in dry.results] == [202] * n
    assert stored(exchange_settings, dataset) == []

    real = sdk.upload(dataset, records)
    assert real.ok and real.created == n
    assert len(real.exchange_ids) == real.batches
    assert [r.key for r in real.results] == [r.key for r in dry.results]

    again = sdk.upload(dataset, records)  # redelivery: harmless, no new version
    assert again.ok and again.updated == n
    assert [v for _, _, v in stored(exchange_settings, dataset)] == [1] * n


def test_a_rejected_record_names_its_field_and_the_others_are_stored(
    sdk: Client, exchange_settings: Settings
) -> None:
    records = sample("patient", 3)
    del records[1]["patientName"]
    receipt = sdk.upload("patient", records)
    assert (receipt.success, receipt.fail) == (2, 1)
    [bad] = receipt.rejected
    assert bad.index == 1 and bad.msg_code == -99
    assert any(e.field == "patientName" and e.code == "node_missing" for e in bad.errors)
    assert len(stored(exchange_settings, "patient")) == 2


def test_large_input_is_split_into_batches_streamed_chunked(
    sdk: Client, exchange: InProcessTransport
) -> None:
    sdk.batch_size = 7
    receipt = sdk.upload("patient", iter(sample("patient", 20)))  # any iterable, consumed lazily
    assert receipt.ok and receipt.total == 20 and receipt.batches == 3
    assert [r.index for r in receipt.results] == list(range(20))
    uploads = [r for r in exchange.requests if r.method == "POST"]
    assert len(uploads) == 3
    for request in uploads:
        assert request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in request.headers
        assert request.headers["content-type"] == "application/json"


def test_a_business_key_twice_goes_to_two_batches_so_the_last_one_wins(
    sdk: Client, exchange_settings: Settings
) -> None:
    first, second = sample("patient", 2)
    changed = copy.deepcopy(first)
    changed["address"] = "河北省石家庄市长安区中山东路 1 号"
    receipt = sdk.upload("patient", [first, second, changed])
    assert receipt.ok and receipt.batches == 2
    assert [r.msg_code for r in receipt.results] == [200, 200, 201]
    versions = {key: v for _, key, v in stored(exchange_settings, "patient")}
    assert versions[receipt.results[0].key] == 2


class TestSmallPlatformLimit:
    @pytest.fixture
    def exchange_settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"exchange": ExchangeSettings(max_records=4)})

    def test_too_many_records_for_the_platform_halves_the_batch(self, sdk: Client) -> None:
        sdk.batch_size = 10
        receipt = sdk.upload("patient", sample("patient", 10))
        assert receipt.ok and receipt.total == 10
        assert sdk.batch_size <= 4


def test_atomic_upload_stores_nothing_when_one_record_fails(
    sdk: Client, exchange_settings: Settings
) -> None:
    records = sample("doctor", 3)
    records[2]["doctorName"] = ""
    receipt = sdk.upload("doctor", records, atomic=True)
    assert receipt.success == 0 and receipt.fail == 3
    assert [r.msg_code for r in receipt.results][:2] == [-91, -91]
    assert stored(exchange_settings, "doctor") == []


@pytest.mark.parametrize("dataset", ["patient", "prescription", "doctor", "lis"])
def test_offline_validation_gives_the_platforms_verdict(sdk: Client, dataset: str) -> None:
    ds = load_standard().datasets[dataset]
    records = sample(dataset, 4)
    text = next(
        f
        for f in ds.fields
        if f.type == "string" and f.table is None and f.code not in ds.key and f.code != "organID"
    )
    coded = next(f for f in ds.fields if f.table is not None)
    records[1][text.code] = "x" * 5000  # too long
    records[1][coded.code] = "not-a-code"  # and outside its value set
    del records[2][ds.fields[-1].code]  # node missing
    online = sdk.upload(dataset, records, dry_run=True)
    offline = offline_check(dataset, records)
    assert [(r.msg_code, r.key) for r in offline.results] == [
        (r.msg_code, r.key) for r in online.results
    ]
    assert [r.errors for r in offline.results] == [r.errors for r in online.results]


def test_validate_first_raises_validation_failed_and_sends_nothing(
    sdk: Client, exchange: InProcessTransport
) -> None:
    records = sample("patient", 2)
    records[0]["sex"] = "X"
    with pytest.raises(ValidationFailed) as info:
        sdk.upload("patient", records, validate=True)
    assert [r.ok for r in info.value.results] == [False, True]
    assert not [r for r in exchange.requests if r.method == "POST"]


def test_unknown_dataset_is_named_with_the_known_ones(sdk: Client) -> None:
    with pytest.raises(UnknownDataset, match="uploadPatientFile"):
        sdk.upload("uploadNothing", [{}])


def test_a_request_refused_as_a_whole_raises_request_rejected(
    exchange: InProcessTransport, credential: IssuedCredential
) -> None:
    """The platform caps the body size: a single record above it cannot be split further."""
    huge = sample("patient", 1)
    huge[0]["address"] = "长" * 6_000_000  # ~18 MB of UTF-8, above the 16 MiB default
    with (
        Client(BASE_URL, credential.app_id, credential.app_secret, transport=exchange) as c,
        pytest.raises(RequestRejected) as info,
    ):
        c.upload("patient", huge)
    assert info.value.code == 41300 and info.value.status == 413


@pytest.fixture
def other_org_client(
    exchange: InProcessTransport, settings: Settings, clock: FrozenClock
) -> Iterator[Client]:
    from tests.client.conftest import make_credential

    cred = make_credential(settings, clock, org_code="91110000802100433B")
    with Client(BASE_URL, cred.app_id, cred.app_secret, transport=exchange) as c:
        yield c


def test_records_of_another_institution_are_rejected_per_record(other_org_client: Client) -> None:
    receipt = other_org_client.upload("organization", sample("organization", 1))
    assert receipt.fail == 1 and receipt.results[0].msg_code == -93
