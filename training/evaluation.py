"""The holdout figures every model version reports (EVALUATION.md), and the plots that go with them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # training runs headless
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve

FloatArray = npt.NDArray[np.floating]


def expected_calibration_error(y: npt.ArrayLike, p: FloatArray, bins: int = 10) -> float:
    """Share-weighted gap between mean predicted and observed rate over 10 equal-width probability bins."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p_arr * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(p_arr[in_bin].mean() - y_arr[in_bin].mean())
    return float(error)


def decile_table(y: npt.ArrayLike, p: FloatArray) -> pd.DataFrame:
    """Rows ranked by score in ten equal groups (1 = highest scores): count, positive rate, lift."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(-p_arr, kind="stable")
    deciles = np.empty(len(order), dtype=int)
    deciles[order] = np.arange(len(order)) * 10 // len(order) + 1
    table = (
        pd.DataFrame({"decile": deciles, "y": y_arr, "p": p_arr})
        .groupby("decile")
        .agg(rows=("y", "size"), positive_rate=("y", "mean"), mean_probability=("p", "mean"))
    )
    table["lift"] = table["positive_rate"] / y_arr.mean()
    return table


def binary_figures(y: npt.ArrayLike, p: FloatArray) -> dict[str, float]:
    y_arr, p_arr = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    top = decile_table(y_arr, p_arr).loc[1]
    return {
        "roc_auc": float(roc_auc_score(y_arr, p_arr)),
        "pr_auc": float(average_precision_score(y_arr, p_arr)),
        "log_loss": float(log_loss(y_arr, np.clip(p_arr, 1e-7, 1 - 1e-7))),
        "brier": float(brier_score_loss(y_arr, p_arr)),
        "ece": expected_calibration_error(y_arr, p_arr),
        "top_decile_lift": float(top["lift"]),
        "top_decile_conversion": float(top["positive_rate"]),
        "ks": float(np.max(tpr - fpr)),
        "positive_rate": float(y_arr.mean()),
        "rows": float(len(y_arr)),
    }


def lift_chart(y: npt.ArrayLike, p: FloatArray, path: Path, title: str) -> Path:
    table = decile_table(y, p)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(table.index, table["positive_rate"], color="#4c72b0", label="observed positive rate")
    ax.axhline(float(np.mean(np.asarray(y))), color="grey", linestyle="--", label="overall rate")
    ax.set_xlabel("decile (1 = highest scores)")
    ax.set_ylabel("positive rate")
    ax.set_xticks(table.index)
    for decile, lift in table["lift"].items():
        ax.annotate(f"{lift:.1f}x", (decile, table.loc[decile, "positive_rate"]), ha="center", va="bottom")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def calibration_chart(y: npt.ArrayLike, p: FloatArray, path: Path, title: str, bins: int = 10) -> Path:
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p_arr * bins).astype(int), bins - 1)
    means = [(p_arr[which == b].mean(), y_arr[which == b].mean()) for b in range(bins) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    ax.plot([m[0] for m in means], [m[1] for m in means], marker="o", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
