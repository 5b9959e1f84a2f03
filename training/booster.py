"""Fitting one XGBoost booster with early stopping on the validation rows."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from training.spec import TrainingSpec

log = logging.getLogger(__name__)


class _ProgressLog(xgb.callback.TrainingCallback):
    """Progress on long fits: a line every `every` rounds with the validation figures."""

    def __init__(self, label: str, every: int = 100) -> None:
        self.label, self.every = label, every

    def after_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: xgb.callback.TrainingCallback.EvalsLog
    ) -> bool:
        if epoch % self.every == 0:
            latest = {m: v[-1] for m, v in evals_log.get("validation", {}).items()}
            log.info("%s: round %d %s", self.label, epoch, latest)
        return False


def fit_booster(
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int8],
    x_val: npt.NDArray[np.float32],
    y_val: npt.NDArray[np.int8],
    spec: TrainingSpec,
    label: str,
) -> xgb.Booster:
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "tree_method": "hist",
        "max_depth": spec.max_depth,
        "learning_rate": spec.learning_rate,
        "min_child_weight": spec.min_child_weight,
        "subsample": spec.subsample,
        "colsample_bytree": spec.colsample_bytree,
        "reg_lambda": spec.reg_lambda,
        "seed": spec.seed,
        "nthread": 2,
    }
    train = xgb.DMatrix(x_train, label=y_train, missing=np.nan)
    validation = xgb.DMatrix(x_val, label=y_val, missing=np.nan)
    booster = xgb.train(
        params,
        train,
        num_boost_round=spec.max_rounds,
        evals=[(validation, "validation")],
        early_stopping_rounds=spec.early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_ProgressLog(label)],
    )
    # Keep only the trees up to the best validation round: serving then needs no iteration_range.
    best = booster.best_iteration + 1
    log.info("%s: best round %d of %d", label, best, booster.num_boosted_rounds())
    trimmed = booster[:best]
    trimmed.set_param({"nthread": 1})
    return trimmed
