"""``/openapi.json`` documents the token service and every upload service with their schemas,
and the server's real answers match what it documents; the standard is published alongside."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from imsp.auth.service import IssuedCredential
from imsp.standard.jsonschema import code_table_json, dataset_schema, format_checker
from imsp.standard.model import load_standard
from tests.exchange.builders import records

STD = load_standard()


def _validator(doc: dict[str, Any], component: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=format_checker())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from imsp.app import create_exchange_app
    from imsp.config import Settings

    app = create_exchange_app(Settings(database_url="sqlite:///:memory:"))
    out: dict[str, Any] = app.openapi()
    return out


def test_openapi_lists_the_token_service_and_all_16_upload_services(doc: dict[str, Any]) -> None:
    assert "get" in doc["paths"]["/auth/accesstoken/create"]
    params = {p["name"] for p in doc["paths"]["/auth/accesstoken/create"]["get"]["parameters"]}
    assert params == {"appId", "appSecret"}
    uploads = {p for p, ops in doc["paths"].items() if "post" in ops and p.startswith("/upload")}
    assert uploads == {d.path for d in STD.ordered()}
    assert len(uploads) == 16


def test_every_reference_in_the_document_resolves(doc: dict[str, Any]) -> None:
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"], ref


@pytest.mark.parametrize("ds", STD.ordered(), ids=lambda d: d.code)
def test_upload_bodies_are_documented_with_the_standard_schema(
    doc: dict[str, Any], ds: Any
) -> None:
    op = doc["paths"][ds.path]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    assert {p["name"] for p in op["parameters"]} == {"accessToken", "dryRun", "atomic"}
    assert set(op["responses"]) >= {"200", "400", "401", "413", "415", "429"}
    body = records(ds, 1 if ds.code == "organization" else 3)
    validator = _validator(doc, name)
    assert list(validator.iter_errors(body)) == []
    assert list(validator.iter_errors(body[0])) == []
    assert list(validator.iter_errors([])) != []  # 1..N records


def test_real_receipts_and_token_answers_match_their_documented_shape(
    exchange_client: TestClient, cred: IssuedCredential, doc: dict[str, Any]
) -> None:
    r = exchange_client.get(
        "/auth/accesstoken/create", params={"appId": cred.app_id, "appSecret": cred.app_secret}
    )
    assert list(_validator(doc, "TokenResponse").iter_errors(r.json())) == []
    auth = {"accessToken": r.json()["data"]["accessToken"], "Content-Type": "application/json"}
    batch = records("consult", 2)
    batch[1]["consultationType"] = "?"
    receipt = exchange_client.post(
        "/uploadConsult", content=orjson.dumps(batch), headers=auth
    ).json()
    assert [x["msgCode"] for x in receipt["data"]["results"]] == [200, -97]
    assert list(_validator(doc, "UploadResponse").iter_errors(receipt)) == []
    refused = exchange_client.post("/uploadConsult", content=b"[", headers=auth).json()
    assert list(_validator(doc, "ErrorBody").iter_errors(refused)) == []


def test_openapi_is_served(exchange_client: TestClient) -> None:
    r = exchange_client.get("/openapi.json")
    assert r.status_code == 200
    assert (
        "uploadPrescriptionInfo"
        in r.json()["paths"]["/uploadPrescriptionInfo"]["post"]["operationId"]
    )


@pytest.mark.parametrize("name", ["prescription", "uploadPrescriptionInfo"])
def test_dataset_schema_is_served_by_code_or_service_name(
    exchange_client: TestClient, name: str
) -> None:
    r = exchange_client.get(f"/standard/v1/{name}.schema.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == orjson.loads(orjson.dumps(dataset_schema("prescription", max_items=1000)))


def test_code_tables_are_served(exchange_client: TestClient) -> None:
    r = exchange_client.get("/standard/v1/codes/sex.json")
    assert r.status_code == 200
    assert r.json() == code_table_json(STD.tables["sex"])


@pytest.mark.parametrize(
    "url", ["/standard/v1/nothing.schema.json", "/standard/v1/codes/nothing.json"]
)
def test_unknown_standard_documents_are_404_in_the_error_shape(
    exchange_client: TestClient, url: str
) -> None:
    r = exchange_client.get(url)
    assert r.status_code == 404
    assert r.json() == {"code": 40400, "msg": r.json()["msg"], "data": None}


def test_a_wrong_method_is_405_with_allow(exchange_client: TestClient) -> None:
    r = exchange_client.get("/uploadPatientFile")
    assert r.status_code == 405 and r.json()["code"] == 40500
    assert r.headers["allow"] == "POST"
    r = exchange_client.post("/auth/accesstoken/create")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


def test_unknown_standard_documents_and_blank_app_ids_are_documented(
    doc: dict[str, Any],
) -> None:
    paths = doc["paths"]
    assert "404" in paths["/standard/v1/{name}.schema.json"]["get"]["responses"]
    assert "404" in paths["/standard/v1/codes/{table}.json"]["get"]["responses"]
    token = paths["/auth/accesstoken/create"]["get"]
    assert all(p["schema"]["pattern"] == "\\S" for p in token["parameters"])


def test_the_document_says_no_string_may_hold_nul(doc: dict[str, Any]) -> None:
    import jsonschema

    from tests.exchange.builders import record

    schemas = doc["components"]["schemas"]
    resolver_doc = {"components": {"schemas": schemas}}
    upload = {**schemas["PatientUpload"], "components": resolver_doc["components"]}
    jsonschema.validate(record("patient"), upload)
    for bad in (record("patient", address="a\x00b"), record("patient", patientName="\x00")):
        try:
            jsonschema.validate(bad, upload)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"schema accepts NUL: {bad}")
    body = doc["paths"]["/uploadPatientFile"]["post"]["requestBody"]["description"]
    assert "NUL" in body  # for undefined nodes, which a JSON Schema cannot cheaply constrain


def test_no_page_loads_anything_from_outside(exchange_client: TestClient) -> None:
    """/docs (Swagger UI from a CDN) is gone; the document itself is served by the platform."""
    assert exchange_client.get("/docs").status_code == 404
    assert exchange_client.get("/redoc").status_code == 404
    r = exchange_client.get("/openapi.json")
    assert r.status_code == 200 and b"cdn." not in r.content and b"//unpkg" not in r.content
