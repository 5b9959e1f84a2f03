"""Lines, records described (JSON Schema, OpenAPI) and records checked (unknown and missing fields, strict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from app.schemas.churn import TELCO_EXAMPLE as CUSTOMER
from tests.conftest import SCORE_KEY
from training.data import load_dataset
from training.spec import find_spec

CHURN_FIELDS = sorted(k for k in CUSTOMER if k != "customer_id")


def churn(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/churn/score", json=body)


def test_a_complete_record_lists_nothing_unknown_or_missing(client: TestClient) -> None:
    (result,) = churn(client, {"customers": [CUSTOMER]}).json()["results"]
    assert result["unknown_fields"] == []
    assert result["missing_fields"] == []


def test_a_record_under_the_data_sets_column_names_lists_every_model_field_as_missing(
    client: TestClient,
) -> None:
    record = {"customerID": "X1", "Contract": "Two year", "MonthlyCharges": 20}
    (result,) = churn(client, {"customers": [record]}).json()["results"]
    assert result["unknown_fields"] == ["Contract", "MonthlyCharges", "customerID"]
    assert sorted(result["missing_fields"]) == CHURN_FIELDS


def test_absent_and_null_model_fields_are_named_and_extra_fields_are_named(client: TestClient) -> None:
    record = {**CUSTOMER, "tenure": None, "crm_segment": "gold"}
    del record["contract"]
    (result,) = churn(client, {"customers": [record]}).json()["results"]
    assert result["unknown_fields"] == ["crm_segment"]
    assert sorted(result["missing_fields"]) == ["contract", "tenure"]


def test_strict_turns_unknown_fields_into_a_422_naming_each(client: TestClient) -> None:
    records = [CUSTOMER, {"customerID": "X1", "Contract": "Two year"}]
    response = churn(client, {"customers": records, "strict": True})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["path"] for d in error["details"]} == {"customers[1].customerID", "customers[1].Contract"}


def test_strict_passes_a_record_with_only_model_fields(client: TestClient) -> None:
    response = churn(client, {"customers": [CUSTOMER], "strict": True})
    assert response.status_code == 200, response.text


def test_route_options_are_not_unknown_fields_and_a_misspelled_option_is_a_422(client: TestClient) -> None:
    (result,) = churn(client, {"customers": [CUSTOMER], "explain": False, "strict": False}).json()["results"]
    assert result["unknown_fields"] == []
    response = churn(client, {"customers": [CUSTOMER], "explian": False})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "explian"


def test_unknown_and_missing_fields_are_counted_per_model(client: TestClient, churn_version: int) -> None:
    def counted(kind: str) -> float:
        text = client.get("/metrics").text
        prefix = f'clm_record_fields_total{{kind="{kind}",model="clm-churn",version="{churn_version}"}}'
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = counted("unknown"), counted("missing")
    churn(client, {"customers": [{"customerID": "X1", "Contract": "Two year"}]})
    assert counted("unknown") == before[0] + 2
    assert counted("missing") == before[1] + len(CHURN_FIELDS)


def test_an_unknown_line_is_a_404_naming_the_lines_served(client: TestClient) -> None:
    response = churn(client, {"customers": [CUSTOMER], "line": "bank"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "churn line 'bank' is not served" in error["message"]
    assert "default line" in error["message"]
    assert error["details"][0]["path"] == "line"


def test_a_body_without_line_scores_with_the_default_line(client: TestClient, churn_version: int) -> None:
    body = churn(client, {"customers": [CUSTOMER]}).json()
    assert body["model"]["name"] == "clm-churn"


def test_leads_sent_to_the_wrong_line_list_what_the_model_missed(leads_client: TestClient) -> None:
    from app.schemas.leads import INBOUND_EXAMPLE

    response = leads_client.post("/v1/leads/score", json={"line": "outbound", "leads": [INBOUND_EXAMPLE]})
    (result,) = response.json()["results"]
    assert "lead_origin" in result["unknown_fields"]
    assert "age" in result["missing_fields"]


def test_every_served_model_shows_its_use_case_and_line(client: TestClient, leads_client: TestClient) -> None:
    served = {m["name"]: (m["use_case"], m["line"]) for m in client.get("/v1/models").json()["models"]}
    assert served == {"clm-churn": ("churn", None), "clm-products": ("products", None)}
    leads = {m["name"]: (m["use_case"], m["line"]) for m in leads_client.get("/v1/models").json()["models"]}
    assert leads == {"clm-leads-inbound": ("leads", "inbound"), "clm-leads-outbound": ("leads", "outbound")}


@pytest.fixture(scope="module")
def churn_schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/models/clm-churn/schema")
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def test_the_record_schema_is_valid_and_accepts_every_holdout_record(
    churn_schema: dict[str, Any], data_dir: Path
) -> None:
    jsonschema.Draft202012Validator.check_schema(churn_schema)
    validator = jsonschema.Draft202012Validator(churn_schema)
    data = load_dataset(find_spec("churn"), data_dir)
    records = data.records(data.holdout)
    assert len(records) > 1000
    for record in records:
        validator.validate({**record, "customer_id": "x"})


def test_the_record_schema_rejects_a_wrong_type_and_lists_the_categories(
    churn_schema: dict[str, Any],
) -> None:
    validator = jsonschema.Draft202012Validator(churn_schema)
    errors = list(validator.iter_errors({**CUSTOMER, "tenure": "many"}))
    assert [list(e.path) for e in errors] == [["tenure"]]
    contract = churn_schema["properties"]["contract"]
    assert contract["anyOf"][0]["enum"] == ["Month-to-month", "One year", "Two year"]
    validator.validate({**CUSTOMER, "contract": "Three year"})  # unseen: scores as missing, not an error


def test_the_schema_of_a_model_not_served_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/models/clm-nothing/schema")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_types_the_records_of_each_served_line(client: TestClient) -> None:
    document = client.get("/openapi.json", headers={"X-API-Key": SCORE_KEY}).json()
    schemas = document["components"]["schemas"]
    customers = schemas["ChurnRequest"]["properties"]["customers"]
    assert customers["items"] == {"$ref": "#/components/schemas/clm-churn.record"}
    tenure = schemas["clm-churn.record"]["properties"]["tenure"]
    assert tenure["type"] == ["number", "null"]
    assert tenure["maximum"] == pytest.approx(3.4028235e38)  # what the boosters' float32 holds
    # Strict bodies take the model's fields only; a body names a served line (null: the default one).
    assert schemas["clm-churn.record.strict"]["additionalProperties"] is False
    strict = next(
        shape for shape in schemas["ChurnRequest"]["anyOf"] if shape["properties"]["strict"]["const"]
    )
    assert strict["properties"]["customers"]["items"] == {
        "$ref": "#/components/schemas/clm-churn.record.strict"
    }
    products = schemas["ProductMatchRequest"]["properties"]["customers"]
    assert products["items"] == {"$ref": "#/components/schemas/clm-products.record"}
