"""The customer value model of a shop (non-contractual): BG/NBD and Gamma-Gamma on transaction summaries.

The transactions are summarised per customer as of the end of a calibration period (model_registry/
value_summary.py), both models are fitted on those summaries (model_registry/value.py), and the holdout period
after it measures them: predicted against actual purchases per customer, and the share of holdout revenue
captured by the top decile of customers ranked by lifetime value against ranking by past spend. A model that
ranks no better than past spend says so, and its tiers are then cut on past spend, not on lifetime value.

A version holds no booster: its bundle is the summary fields' contract and, in its metadata, the fitted
parameters, the value terms (horizon, discount rate) and the tier cut-offs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # training runs headless
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from model_registry.bundle import ModelBundle
from model_registry.contract import Feature, FeatureContract
from model_registry.registry import ModelRegistry, VersionRef
from model_registry.value import BgNbd, GammaGamma, ValueModel, ValueTerms
from model_registry.value_summary import SUMMARY_FIELDS, Summary, Transaction, summarise
from model_registry.value_tiers import Basis, TierCutoffs, tier_cutoffs
from training.data import DataError, read_source
from training.publish import log_figures, log_tables, publish, training_run
from training.spec import ModelSpec

log = logging.getLogger(__name__)
ID_FIELD = "customer_id"
TOP_SHARE = 0.1  # the top decile whose holdout revenue is compared
# Lifetime value must capture this much more holdout revenue in its top decile than past spend does to tier on it.
MIN_CAPTURE_GAIN = 0.005


class ValueSettings(BaseModel):
    """The `[extra]` of a value spec: the transaction columns, the periods and the value terms."""

    model_config = ConfigDict(extra="forbid")

    date_column: str
    quantity_column: str
    price_column: str
    invoice_column: str
    cancellation_prefix: str = Field(
        description="Invoices starting with it are cancellations; like negative quantities, returns."
    )
    calibration_end: date = Field(description="Last day of the calibration period (its summaries' cut-off).")
    holdout_end: date = Field(description="Last day of the holdout period, which starts the day after.")
    unit_days: int = Field(ge=1, description="The models' time unit in days (7: weeks).")
    current_days: int = Field(ge=1, description="Current value: net spend of this many days to the cut-off.")
    horizon_months: int = Field(ge=1, le=120, description="Lifetime value sums this many months ahead.")
    annual_discount_rate: float = Field(ge=0, le=1)
    high_share: float = Field(gt=0, lt=1, description="Share of customers in the high tier.")
    mid_share: float = Field(gt=0, lt=1, description="Share in the mid tier; low takes the rest.")

    @model_validator(mode="after")
    def _ordered(self) -> ValueSettings:
        if self.holdout_end <= self.calibration_end:
            raise ValueError("holdout_end must be after calibration_end")
        if self.high_share + self.mid_share >= 1:
            raise ValueError("high_share + mid_share must leave a low tier")
        return self

    @property
    def terms(self) -> ValueTerms:
        return ValueTerms(self.horizon_months, self.annual_discount_rate, float(self.unit_days))


def read_transactions(spec: ModelSpec, settings: ValueSettings, data_dir: Path) -> pd.DataFrame:
    """Transaction lines as (customer_id, day, amount, is_return): lines without a customer are dropped (they
    cannot be summarised), and so are lines of price 0 or less (free items, bad-debt adjustments)."""
    frame = read_source(spec.data.model_copy(update={"missing_values": []}), data_dir)
    needed = [
        spec.data.id_column,
        settings.date_column,
        settings.quantity_column,
        settings.price_column,
        settings.invoice_column,
    ]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{spec.data.source} has no column {', '.join(missing)}: check the spec of {spec.key}"
        )
    frame = frame.dropna(subset=[spec.data.id_column])
    price = pd.to_numeric(frame[settings.price_column])
    quantity = pd.to_numeric(frame[settings.quantity_column])
    frame, price, quantity = frame[price > 0], price[price > 0], quantity[price > 0]
    invoice = frame[settings.invoice_column].astype(str)
    # CustomerID reads as a float (17850.0): the customer's id is its integer part, as text.
    customer = pd.to_numeric(frame[spec.data.id_column]).astype("int64").astype(str)
    return pd.DataFrame(
        {
            ID_FIELD: customer,
            "day": pd.to_datetime(frame[settings.date_column]).dt.date,
            "amount": quantity * price,
            "is_return": invoice.str.startswith(settings.cancellation_prefix) | (quantity < 0),
        }
    ).reset_index(drop=True)


def summaries_at(transactions: pd.DataFrame, cutoff: date, settings: ValueSettings) -> pd.DataFrame:
    """Every customer with a purchase on or before the cut-off, summarised as of it (index: customer_id)."""
    before = transactions[transactions["day"] <= cutoff]
    rows: dict[str, Summary] = {}
    for customer, lines in before.groupby(ID_FIELD, sort=True):
        if lines["is_return"].all():
            continue  # returns only: nothing bought in the period
        items = [
            Transaction(day, amount, is_return)
            for day, amount, is_return in zip(lines["day"], lines["amount"], lines["is_return"], strict=True)
        ]
        rows[str(customer)] = summarise(items, cutoff, settings.unit_days, settings.current_days)
    table = pd.DataFrame([vars(s) for s in rows.values()], index=pd.Index(list(rows), name=ID_FIELD))
    return table


@dataclass(frozen=True)
class Holdout:
    """Per calibration customer: its purchases (units with a sale) and net revenue in the holdout period."""

    purchases: npt.NDArray[np.float64]
    revenue: npt.NDArray[np.float64]
    units: float  # the holdout period's length in model time units


def holdout_of(transactions: pd.DataFrame, customers: pd.Index, settings: ValueSettings) -> Holdout:
    inside = transactions[
        (transactions["day"] > settings.calibration_end) & (transactions["day"] <= settings.holdout_end)
    ]
    sales = inside[~inside["is_return"]]
    # Purchases on the holdout's own unit grid, from its first day: units with at least one sale.
    unit = sales["day"].map(lambda d: (d - settings.calibration_end).days - 1) // settings.unit_days
    purchases = sales.assign(unit=unit).groupby(ID_FIELD)["unit"].nunique()
    revenue = inside.groupby(ID_FIELD)["amount"].sum()
    days = (settings.holdout_end - settings.calibration_end).days
    return Holdout(
        purchases=purchases.reindex(customers, fill_value=0).to_numpy(np.float64),
        revenue=revenue.reindex(customers, fill_value=0.0).to_numpy(np.float64),
        units=days / settings.unit_days,
    )


def top_share_captured(ranking: npt.NDArray[np.float64], revenue: npt.NDArray[np.float64]) -> float:
    """Share of the (positive) holdout revenue that the top 10 % of customers by `ranking` brought."""
    top = np.argsort(-ranking, kind="stable")[: max(1, round(TOP_SHARE * len(ranking)))]
    positive = np.clip(revenue, 0, None)
    return float(positive[top].sum() / positive.sum())


def purchases_table(
    frequency: npt.NDArray[np.float64], actual: npt.NDArray[np.float64], predicted: npt.NDArray[np.float64]
) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration-period repeat purchases (7 and more pooled),
    as Fader, Hardie & Lee (2005) show them."""
    group = np.minimum(frequency, 7).astype(int)
    table = (
        pd.DataFrame({"calibration_repeats": group, "actual": actual, "predicted": predicted})
        .groupby("calibration_repeats")
        .agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean"))
    )
    table.index = [str(i) if i < 7 else "7+" for i in table.index]
    table.index.name = "calibration_repeats"
    return table


def _purchases_plot(table: pd.DataFrame, key: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table.index, table["actual"], marker="o", label="actual")
    ax.plot(table.index, table["predicted"], marker="s", linestyle="--", label="BG/NBD")
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title(f"{key}: conditional expectations")
    ax.legend()
    fig.tight_layout()
    mlflow.log_figure(fig, "plots/purchases_actual_vs_predicted.png")
    plt.close(fig)


@dataclass(frozen=True)
class Evaluation:
    figures: dict[str, float]
    table: pd.DataFrame
    lifetime_value: npt.NDArray[np.float64]


def evaluate(model: ValueModel, calibration: pd.DataFrame, holdout: Holdout) -> Evaluation:
    x, t_x, big_t, zbar = _columns(calibration)
    predicted = model.purchases.expected_purchases(holdout.units, x, t_x, big_t)
    errors = np.abs(predicted - holdout.purchases)
    # The baseline a model must beat: each customer keeps buying at its calibration-period rate.
    naive = np.divide(x, big_t, out=np.zeros_like(x), where=big_t > 0) * holdout.units
    clv = model.lifetime_value(x, t_x, big_t, zbar)
    past = calibration["past_spend"].to_numpy(np.float64)
    figures = {
        "customers": float(len(calibration)),
        "purchases_mae": float(errors.mean()),
        "purchases_correlation": float(np.corrcoef(predicted, holdout.purchases)[0, 1]),
        "purchases_mae_naive_rate": float(np.abs(naive - holdout.purchases).mean()),
        "predicted_purchases_total": float(predicted.sum()),
        "actual_purchases_total": float(holdout.purchases.sum()),
        "top_decile_capture": top_share_captured(clv, holdout.revenue),
        "top_decile_capture_past_spend": top_share_captured(past, holdout.revenue),
        "revenue_correlation": float(np.corrcoef(clv, holdout.revenue)[0, 1]),
        "revenue_correlation_past_spend": float(np.corrcoef(past, holdout.revenue)[0, 1]),
    }
    figures["capture_gain_over_past_spend"] = (
        figures["top_decile_capture"] - figures["top_decile_capture_past_spend"]
    )
    return Evaluation(figures, purchases_table(x, holdout.purchases, predicted), clv)


def _columns(summaries: pd.DataFrame) -> tuple[npt.NDArray[np.float64], ...]:
    return tuple(summaries[c].to_numpy(np.float64) for c in ("frequency", "recency", "t", "monetary_value"))


def fit(calibration: pd.DataFrame, settings: ValueSettings) -> ValueModel:
    x, t_x, big_t, zbar = _columns(calibration)
    return ValueModel(BgNbd.fit(x, t_x, big_t), GammaGamma.fit(x, zbar), settings.terms)


def contract() -> FeatureContract:
    described = {
        "frequency": "repeat purchases (time units with a purchase after the first)",
        "recency": "time unit of the last purchase, from the first",
        "t": "whole time units from the first purchase to the cut-off",
        "monetary_value": "mean spend of the repeat purchases, net of returns",
        "current_value": "net spend in the current-value period to the cut-off",
        "past_spend": "net spend up to the cut-off",
    }
    return FeatureContract(
        id_field=ID_FIELD,
        features=[Feature(name, "numeric", description=described[name]) for name in SUMMARY_FIELDS],
    )


def train_value(
    spec: ModelSpec, data_dir: Path, registry: ModelRegistry, *, as_challenger: bool = False
) -> tuple[VersionRef, dict[str, float]]:
    settings = ValueSettings.model_validate(spec.extra)
    transactions = read_transactions(spec, settings, data_dir)
    calibration = summaries_at(transactions, settings.calibration_end, settings)
    holdout = holdout_of(transactions, calibration.index, settings)

    with training_run(registry, spec):
        mlflow.log_params({f"value.{k}": v for k, v in settings.model_dump(mode="json").items()})
        model = fit(calibration, settings)
        result = evaluate(model, calibration, holdout)
        figures = result.figures
        basis: Basis = (
            "lifetime_value" if figures["capture_gain_over_past_spend"] >= MIN_CAPTURE_GAIN else "past_spend"
        )
        figures["tiers_on_lifetime_value"] = float(basis == "lifetime_value")
        ranked_on = (
            result.lifetime_value if basis == "lifetime_value" else calibration["past_spend"].to_numpy()
        )
        cutoffs = tier_cutoffs(basis, ranked_on, settings.high_share, settings.mid_share)
        log_figures(figures)
        mlflow.log_dict(model.to_metadata(), "value_model.json")
        log_tables({"holdout_purchases_by_calibration_repeats": result.table})
        _purchases_plot(result.table, spec.key)
        for name, value in {**model.to_metadata()["bg_nbd"], **model.to_metadata()["gamma_gamma"]}.items():
            mlflow.log_metric(f"param.{name}", value)
        bundle = _bundle(spec, settings, model, cutoffs, figures, calibration)
        ref = publish(registry, spec, bundle, as_challenger=as_challenger)
    log.info(
        "%s version %d: holdout purchases MAE %.3f, correlation %.3f; top decile captures %.1f %% of holdout "
        "revenue by lifetime value, %.1f %% by past spend: tiers on %s",
        spec.registered_model,
        ref.version,
        figures["purchases_mae"],
        figures["purchases_correlation"],
        100 * figures["top_decile_capture"],
        100 * figures["top_decile_capture_past_spend"],
        basis,
    )
    return ref, figures


def _bundle(
    spec: ModelSpec,
    settings: ValueSettings,
    model: ValueModel,
    cutoffs: TierCutoffs,
    figures: dict[str, float],
    calibration: pd.DataFrame,
) -> ModelBundle:
    example = calibration.head(5)
    x, t_x, big_t, zbar = _columns(example)
    records = [{ID_FIELD: customer, **row} for customer, row in example[list(SUMMARY_FIELDS)].iterrows()]
    metadata: dict[str, Any] = {
        "use_case": spec.use_case,
        "line": spec.line,
        "description": spec.description,
        "value_model": model.to_metadata(),
        "tiers": cutoffs.to_metadata(),
        # How serving summarises the transactions a client posts: as training summarised its data.
        "summary_rules": {"unit_days": settings.unit_days, "current_days": settings.current_days},
        "holdout": figures,
        # A loaded version must give these again before it serves (ValueModel's check).
        "value_check": {
            "records": [{k: (float(v) if k != ID_FIELD else v) for k, v in r.items()} for r in records],
            "lifetime_value": model.lifetime_value(x, t_x, big_t, zbar).tolist(),
        },
    }
    return ModelBundle(contract=contract(), boosters={}, metadata=metadata)


def holdout_figures(spec: ModelSpec, data_dir: Path, bundle: ModelBundle) -> dict[str, float]:
    """A registered version's holdout figures from its stored parameters (the promotion gate's hook)."""
    settings = ValueSettings.model_validate(spec.extra)
    transactions = read_transactions(spec, settings, data_dir)
    calibration = summaries_at(transactions, settings.calibration_end, settings)
    holdout = holdout_of(transactions, calibration.index, settings)
    return evaluate(ValueModel.from_metadata(bundle.metadata["value_model"]), calibration, holdout).figures


def write_summaries(spec: ModelSpec, data_dir: Path, as_of: date, path: Path) -> int:
    """Every customer's summary as of `as_of`, as the store's records of the line (`clm ingest customers`)."""
    settings = ValueSettings.model_validate(spec.extra)
    table = summaries_at(read_transactions(spec, settings, data_dir), as_of, settings)
    table[list(SUMMARY_FIELDS)].to_csv(path)
    return len(table)
