"""The baseline comparison behind ``wattwise dr baselines``: tables of accuracy on placebo
days, on event days against the true counterfactual, and opendsm side by side."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from features.dr.config import DRConfig
from features.dr.evaluate import (
    accuracy_table,
    event_long_frame,
    long_frame,
    placebo_evaluation,
    render_table,
)
from features.dr.performance import measure_events

log = logging.getLogger(__name__)


def compare_baselines(
    dataset_dir: Path,
    cfg: DRConfig,
    *,
    placebo: bool = True,
    events: bool = True,
    customers: int | None = None,
    opendsm: int = 0,
    out: Path | None = None,
) -> list[str]:
    """Run the evaluations and return the rendered tables (lines)."""
    from features.dr.panel import customer_zones

    lines: list[str] = []
    ids = None
    if customers:
        ids = customer_zones(dataset_dir).customer_id.head(customers).tolist()
    if placebo:
        long = placebo_evaluation(dataset_dir, cfg, customers=ids)
        lines.append(
            render_table(
                accuracy_table(long),
                f"placebo non-event weekdays, hours {cfg.evaluation.placebo_hours} (actual = metered)",
            )
        )
        if out:
            out.mkdir(parents=True, exist_ok=True)
            long.to_parquet(out / "placebo_long.parquet", index=False)
    from features.dr.oracle import has_truth, truth_long_frame

    if events and has_truth(dataset_dir):
        ms = measure_events(dataset_dir, cfg)
        long = event_long_frame(ms)
        tl = truth_long_frame(dataset_dir, long, {m.event_id: m.start for m in ms})
        lines.append(
            render_table(
                accuracy_table(tl), "event days, every participant (actual = true counterfactual)"
            )
        )
        if out:
            tl.to_parquet(out / "event_truth_long.parquet", index=False)
    if opendsm:
        lines += opendsm_side_by_side(dataset_dir, cfg, opendsm)
    return lines


def opendsm_side_by_side(dataset_dir: Path, cfg: DRConfig, n_homes: int) -> list[str]:
    """Our baselines and opendsm's hourly model on the same homes and placebo days.

    Placebo days come from the last weeks of the data so opendsm has a full year to fit on.
    """
    import datetime as dt

    from features.dr import eemeter_hourly
    from features.dr.baselines import METHODS, EventWindow, compute_baselines
    from features.dr.evaluate import _data_days, _event_dates, placebo_days
    from features.dr.events import event_days, read_events, read_participants
    from features.dr.panel import customer_zones, load_panel

    if not eemeter_hourly.available():
        return ["opendsm: not installed or does not import here; side-by-side skipped"]
    zones = customer_zones(dataset_dir)
    tz = zones.tz.mode().iloc[0]
    z = zones[zones.tz == tz].head(n_homes)
    first, last = _data_days(dataset_dir)
    panel = load_panel(
        dataset_dir, z.customer_id.tolist(), first, last, tz, calendar=cfg.baselines.holidays
    )
    evs, parts = read_events(dataset_dir), read_participants(dataset_dir)
    excl = event_days(panel, evs, parts)
    blocked = _event_dates(panel, evs)
    fit_days = min(365, panel.n_days - 20)
    blocked[:fit_days] = True
    days = placebo_days(panel, blocked, min(cfg.evaluation.placebo_days, 10), fit_days)
    if not days:
        return ["opendsm: no placebo days after a year of data; side-by-side skipped"]
    s, e = cfg.evaluation.placebo_hours
    rows = np.arange(len(panel.customers))
    od = eemeter_hourly.predict_days(
        panel, rows, np.arange(days[0] - fit_days, days[0]), excl, days, s, e
    )
    frames = []
    for j, d in enumerate(days):
        preds = compute_baselines(panel, EventWindow(d, s, e), cfg.baselines, excl, METHODS)
        preds["opendsm_hourly"] = od[:, j]
        frames.append(
            long_frame(panel.customers, str(panel.dates()[d]), s, preds, panel.kwh[:, d, s:e])
        )
    long = pd.concat(frames, ignore_index=True)
    # the same homes for every method: those opendsm could model
    fitted = panel.customers[np.isfinite(od).all(axis=(1, 2))]
    long = long[long.customer_id.isin(fitted)]
    del dt
    return [
        render_table(
            accuracy_table(long),
            f"side by side with opendsm on the {len(fitted)} of {len(rows)} homes it could fit, {len(days)} placebo days after a year of data",
        )
    ]
