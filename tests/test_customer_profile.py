"""GET /v1/customers/{customer_id}/profile: the call-centre view of a stored Telco customer."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from app.cli import clm
from app.main import create_app
from app.models import PredictionRow, StoredProfileScores
from app.repositories import customers as customer_repo
from model_registry.registry import ModelRegistry
from tests.conftest import SCORE_KEY, load_demo_customers, make_settings
from tests.test_prediction_log import wait_until


def profile(client: TestClient, customer_id: str) -> dict:
    response = client.get(f"/v1/customers/{customer_id}/profile")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_stored_customer_profile_has_every_part_with_its_model_version_and_feature_age(
    store_client: TestClient, churn_version: int, products_version: int
) -> None:
    body = profile(store_client, "7590-VHVEG")
    churn_ref = {"name": "clm-churn", "version": churn_version, "alias": "champion"}
    products_ref = {"name": "clm-products", "version": products_version, "alias": "champion"}
    assert body["customer_id"] == "7590-VHVEG"
    for part in ("churn", "offers", "lifecycle", "value", "next_best_action"):
        assert body[part]["features_age_seconds"] >= 0
        assert body[part]["features_as_of"] == body["churn"]["features_as_of"]
    assert body["churn"]["models"] == [churn_ref]
    assert body["offers"]["models"] == [products_ref]
    assert body["lifecycle"]["models"] == [churn_ref]
    assert body["value"]["models"] == [churn_ref]  # lifetime value from the churn probability
    assert body["next_best_action"]["models"] == [churn_ref, products_ref]
    assert body["lifecycle"]["stage"] in {"A", "B", "C", "D", "E"}
    assert body["value"]["tier"] in {"high", "mid", "low"}
    action = body["next_best_action"]
    assert action["script"]
    assert action["risk_level"] == body["churn"]["risk_level"]
    assert action["value_tier"] == body["value"]["tier"]


def test_the_offers_are_the_best_products_the_customer_lacks_as_the_match_route_ranks_them(
    store_client: TestClient,
) -> None:
    offers = profile(store_client, "7590-VHVEG")["offers"]
    matched = store_client.post("/v1/products/match", json={"customers": [{"customer_id": "7590-VHVEG"}]})
    (result,) = matched.json()["results"]
    assert offers["available"] is True
    # The same offers in the same order; their reasons come from the match route, not the profile.
    assert offers["recommendations"] == [{**r, "top_factors": None} for r in result["recommendations"]]
    # 7590-VHVEG (DSL, no phone) lacks online security, device protection, tech support and both streams.
    assert {o["product"] for o in offers["recommendations"]} <= {
        "online_security",
        "device_protection",
        "tech_support",
        "streaming_tv",
        "streaming_movies",
    }
    best = offers["recommendations"][0]["propensity"]
    assert offers["intent"] == ("high" if best >= 0.5 else "low")


def test_the_profile_churn_part_is_the_score_the_churn_route_gives(store_client: TestClient) -> None:
    churn = profile(store_client, "7590-VHVEG")["churn"]
    scored = store_client.post("/v1/churn/score", json={"customers": [{"customer_id": "7590-VHVEG"}]})
    (result,) = scored.json()["results"]
    assert churn["churn_probability"] == result["churn_probability"]
    assert churn["risk_level"] == result["risk_level"]
    assert churn["top_factors"] == result["top_factors"]


def test_without_a_product_model_the_offers_part_says_so_and_the_rest_stands(
    registry: ModelRegistry, churn_version: int, database_url: str, data_dir: Path
) -> None:
    load_demo_customers(database_url, data_dir)
    settings = make_settings(registry, ["clm-churn"], database_url=database_url)
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        body = profile(client, "7590-VHVEG")
    offers = body["offers"]
    assert offers["available"] is False
    assert offers["message"].startswith("the default products line is not served")
    assert offers["models"] == []
    assert offers["recommendations"] == []
    assert offers["intent"] == "unknown"
    assert body["next_best_action"]["action"] in {"retention_care", "nurture"}


def test_a_customer_with_a_recorded_churn_is_in_the_exit_stage(store_client: TestClient) -> None:
    posted = store_client.post(
        "/v1/outcomes", json={"outcomes": [{"event": "customer_churned", "record_id": "9237-HQITU"}]}
    )
    assert posted.status_code == 200, posted.text
    body = profile(store_client, "9237-HQITU")
    assert body["lifecycle"]["stage"] == "E"
    assert body["lifecycle"]["name"] == "exit"
    assert body["next_best_action"]["action"] in {"win_back", "no_action"}


def test_a_telco_profile_shows_current_and_lifetime_value_and_the_channel_follows_the_tier(
    store_client: TestClient,
) -> None:
    body = profile(store_client, "3655-SNQYZ")  # 69 months on a two-year contract, 113.25 a month
    value = body["value"]
    assert value["basis"] == "lifetime_value"
    assert value["current_value"] == 113.25
    assert value["lifetime_value"] > 113.25 * 12  # a loyal customer: years of margin, discounted
    assert value["expected_months"] > 12
    assert value["reason"].startswith(f"lifetime value {value['lifetime_value']:.2f}")
    assert value["tier"] == "high"
    action = body["next_best_action"]
    assert action["value_tier"] == "high"
    if action["action"] != "nurture":  # nurture is broadcast whatever the value
        assert action["channel"] == "account_manager"


def test_a_churned_high_value_customer_gets_a_win_back_action(store_client: TestClient) -> None:
    posted = store_client.post(
        "/v1/outcomes", json={"outcomes": [{"event": "customer_churned", "record_id": "9959-WOFKT"}]}
    )
    assert posted.status_code == 200, posted.text
    body = profile(store_client, "9959-WOFKT")  # 106.70 a month for 71 months
    assert body["lifecycle"]["stage"] == "E"
    assert body["value"]["basis"] == "lifetime_value_if_kept"
    assert body["value"]["tier"] == "high"
    assert "if won back" in body["value"]["reason"]
    action = body["next_best_action"]
    assert (action["action"], action["channel"]) == ("win_back", "account_manager")


def test_an_unknown_customer_is_a_404(store_client: TestClient) -> None:
    response = store_client.get("/v1/customers/NO-SUCH/profile")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_each_profile_served_is_logged_as_its_churn_score_and_its_offers(
    store_client: TestClient, churn_version: int, products_version: int
) -> None:
    request_id = uuid.uuid4().hex
    response = store_client.get("/v1/customers/7590-VHVEG/profile", headers={"X-Request-ID": request_id})
    body = response.json()
    prediction_log = store_client.app_state["prediction_log"]
    wait_until(lambda: prediction_log.pending == 0, "the log to be written")
    with store_client.app_state["database"].session() as session:
        rows = session.scalars(select(PredictionRow).where(PredictionRow.request_id == request_id)).all()
    route = "/v1/customers/{customer_id}/profile"
    churn = body["churn"]
    assert {(r.route, r.model, r.version, r.record_id, r.item, r.score, r.label) for r in rows} == {
        (
            route,
            "clm-churn",
            churn_version,
            "7590-VHVEG",
            "",
            churn["churn_probability"],
            churn["risk_level"],
        ),
        *(
            (route, "clm-products", products_version, "7590-VHVEG", o["product"], o["propensity"], None)
            for o in body["offers"]["recommendations"]
        ),
    }


def scores_from(source: str) -> float:
    return REGISTRY.get_sample_value("clm_profile_scores_total", {"source": source}) or 0.0


def test_a_repeat_view_reuses_the_scores_and_still_logs_each_one_served(store_client: TestClient) -> None:
    remembered = scores_from("memo")
    request_ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    bodies = [
        store_client.get("/v1/customers/5575-GNVDE/profile", headers={"X-Request-ID": rid}).json()
        for rid in request_ids
    ]
    # The trend reads the prediction log, which may hold the first view's score by the second: not compared.
    first, second = (
        {k: v for k, v in b["churn"].items() if k not in ("features_age_seconds", "trend")} for b in bodies
    )
    assert first == second
    assert scores_from("memo") > remembered
    wait_until(lambda: store_client.app_state["prediction_log"].pending == 0, "the log to be written")
    with store_client.app_state["database"].session() as session:
        logged = session.scalars(
            select(PredictionRow.request_id).where(
                PredictionRow.request_id.in_(request_ids), PredictionRow.model == "clm-churn"
            )
        ).all()
    assert sorted(logged) == sorted(request_ids)


def score_customers_cli(registry: ModelRegistry, database_url: str, models: str) -> Result:
    env = {
        "CLM_DATABASE_URL": database_url,
        "CLM_MLFLOW_TRACKING_URI": registry.tracking_uri,
        "CLM_ARTIFACT_ROOT": str(registry.artifact_root),
        "CLM_MODELS": models,
    }
    return CliRunner().invoke(clm, ["score", "customers", "--batch-size", "2000"], env=env)


def without_ages(body: dict) -> dict:
    """A profile without what differs between two views of the same customer: request id, feature age, and the
    score's trend (each view's score is logged, so the next view's history holds one more)."""
    return {
        part: {k: v for k, v in value.items() if k not in ("features_age_seconds", "trend")}
        if isinstance(value, dict)
        else value
        for part, value in body.items()
        if part != "request_id"
    }


def test_stored_scores_give_the_same_profile_as_scoring_on_view_and_follow_every_change(
    registry: ModelRegistry, churn_version: int, products_version: int, database_url: str, data_dir: Path
) -> None:
    load_demo_customers(database_url, data_dir)
    served = '["clm-churn", "clm-products"]'
    settings = make_settings(
        registry, ["clm-churn", "clm-products"], database_url=database_url, profile_memo_size=0
    )
    ids = ["7590-VHVEG", "5575-GNVDE", "9237-HQITU"]
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        scored_on_view = [profile(client, i) for i in ids]

        result = score_customers_cli(registry, database_url, served)
        assert result.exit_code == 0, result.output
        assert (
            f"7043 customers scored by clm-churn version {churn_version}, clm-products version"
            in result.output
        )
        stored_before = scores_from("stored")
        assert [without_ages(profile(client, i)) for i in ids] == [without_ages(b) for b in scored_on_view]
        assert scores_from("stored") == stored_before + len(ids)

        # A record changed after the run: its stored scores are not used, the new record is scored on view.
        database = client.app_state["database"]
        with database.session() as session:
            record = customer_repo.get_records(session.connection(), ["7590-VHVEG"])["7590-VHVEG"]
            customer_repo.upsert_many(session, [{**record, "contract": "Two year", "tenure": 30}])
        changed = profile(client, "7590-VHVEG")
        assert scores_from("stored") == stored_before + len(ids)
        matched = client.post("/v1/churn/score", json={"customers": [{"customer_id": "7590-VHVEG"}]}).json()
        assert changed["churn"]["churn_probability"] == matched["results"][0]["churn_probability"]
        assert changed["churn"]["churn_probability"] < scored_on_view[0]["churn"]["churn_probability"]

        # Scores a version other than the served one made are not used either.
        with database.engine.begin() as connection:
            connection.execute(
                update(StoredProfileScores)
                .where(StoredProfileScores.customer_id == "5575-GNVDE")
                .values(churn_version=churn_version + 100, scores={"churn": {}, "offers": None})
            )
        assert without_ages(profile(client, "5575-GNVDE")) == without_ages(scored_on_view[1])

        # A re-run scores only what is stale: the changed customer and the other version's row.
        result = score_customers_cli(registry, database_url, served)
        assert result.exit_code == 0, result.output
        assert "profile scores: 2 customers scored" in result.output
        stored_before = scores_from("stored")
        assert without_ages(profile(client, "7590-VHVEG")) == without_ages(changed)
        assert scores_from("stored") == stored_before + 1


def test_scores_stored_without_a_product_model_are_not_used_by_a_service_that_has_one(
    registry: ModelRegistry, churn_version: int, products_version: int, database_url: str, data_dir: Path
) -> None:
    load_demo_customers(database_url, data_dir)
    result = score_customers_cli(registry, database_url, '["clm-churn"]')
    assert result.exit_code == 0, result.output
    assert "scoring without offers: the default products line is not served" in result.output
    settings = make_settings(registry, ["clm-churn", "clm-products"], database_url=database_url)
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        stored_before = scores_from("stored")
        offers = profile(client, "7590-VHVEG")["offers"]
    assert offers["available"] is True
    assert offers["recommendations"]
    assert scores_from("stored") == stored_before


def test_scoring_customers_needs_the_churn_model(registry: ModelRegistry, database_url: str) -> None:
    result = score_customers_cli(registry, database_url, '["clm-products"]')
    assert result.exit_code == 2
    assert "the profile needs clm-churn" in result.output


def test_a_changed_record_is_scored_afresh_never_served_from_memory(
    registry: ModelRegistry, churn_version: int, database_url: str, data_dir: Path
) -> None:
    load_demo_customers(database_url, data_dir)
    settings = make_settings(registry, ["clm-churn"], database_url=database_url)
    with TestClient(create_app(settings), headers={"X-API-Key": SCORE_KEY}) as client:
        before = profile(client, "7590-VHVEG")
        with client.app_state["database"].session() as session:
            record = customer_repo.get_records(session.connection(), ["7590-VHVEG"])["7590-VHVEG"]
            customer_repo.upsert_many(session, [{**record, "contract": "Two year", "tenure": 30}])
        after = profile(client, "7590-VHVEG")
    assert after["churn"]["features_as_of"] > before["churn"]["features_as_of"]
    assert after["churn"]["churn_probability"] < before["churn"]["churn_probability"]
