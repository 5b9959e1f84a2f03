"""`clm drift report`: one self-contained HTML page, a table of every field's drift and a plot per field.

Each plot shows the shares per bin of the reference (the version's training rows; the validation rows' scores)
beside those of the window's sampled records, as an inline PNG (matplotlib, the training plots' library), so
the page needs nothing but itself to be read, mailed or archived.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

STATUS_COLOURS = {"stable": "#2e7d32", "watch": "#ef6c00", "act": "#c62828", "no data": "#757575"}


def _plot(title: str, distribution: dict[str, Any]) -> str:
    """Reference and current shares per bin, side by side: a PNG as a data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = distribution["bins"]
    positions = np.arange(len(bins))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(bins) + 2), 3.2))
    ax.bar(positions - 0.2, distribution["reference"], 0.4, label="reference (training)", color="#90a4ae")
    ax.bar(positions + 0.2, distribution["current"], 0.4, label="current (sampled)", color="#1e88e5")
    ax.set_xticks(positions, bins, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("share")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _psi(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _section(name: str, distribution: dict[str, Any]) -> str:
    status = distribution["status"]
    title = f"{name}: PSI {_psi(distribution['psi'])} ({status})"
    return (
        f'<section><h3 id="{html.escape(name)}">{html.escape(title)}</h3>'
        f'<img alt="{html.escape(name)}: reference and current shares per bin" '
        f'src="{_plot(title, distribution)}"></section>'
    )


def render(figures: dict[str, Any]) -> str:
    thresholds = figures["thresholds"]
    rows = "".join(
        f'<tr><td><a href="#{html.escape(f["field"])}">{html.escape(f["field"])}</a></td><td>{f["kind"]}</td>'
        f'<td>{_psi(f["psi"])}</td><td style="color:{STATUS_COLOURS[f["status"]]}">{f["status"]}</td></tr>'
        for f in figures["fields"]
    )
    share = figures["share_drifting"]
    summary = (
        f"{figures['records']:,} sampled records of version {figures['version']} scored from "
        f"{figures['since']:%Y-%m-%d %H:%M} to {figures['until']:%Y-%m-%d %H:%M} UTC, against a reference of "
        f"{figures['reference_rows']:,} training rows. Share of fields drifting (PSI ≥ {thresholds['watch']}): "
        f"{'–' if share is None else f'{share:.0%}'}; score PSI {_psi(figures['score']['psi'])} "
        f"({figures['score']['status']}). PSI below {thresholds['watch']} stable, {thresholds['watch']} to "
        f"{thresholds['act']} watch, {thresholds['act']} and above act."
    )
    sections = [_section("score", figures["score"])]
    sections += [_section(f["field"], f) for f in figures["fields"]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift of {html.escape(figures["model"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}img{{max-width:100%}}</style></head>
<body><h1>Drift of {html.escape(figures["model"])} version {figures["version"]}</h1>
<p>{html.escape(summary)}</p>
<table><tr><th>field</th><th>kind</th><th>PSI</th><th>status</th></tr>{rows}</table>
<h2>Reference against current, per field</h2>
{"".join(sections)}
</body></html>
"""
