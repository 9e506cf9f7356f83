"""Baseline accuracy: placebo (non-event) days against metered load, event days against the
true counterfactual, per customer and for the portfolio (ASHRAE Guideline 14 metrics).

Metrics over a customer's evaluation hours (all its placebo days or events together):
CV(RMSE) = RMSE / mean actual; NMBE = sum(actual - baseline) / (n × mean actual) (ASHRAE
sign: positive = the baseline under-predicts); median absolute % error of the event-window
energy, per day. The portfolio is the sum over customers at each hour. Guideline 14 calls an
hourly model calibrated at CV(RMSE) <= 30 % and |NMBE| <= 10 %.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from features.dr.baselines import METHODS, EventWindow, compute_baselines
from features.dr.config import DRConfig
from features.dr.events import event_days, read_events, read_participants
from features.dr.panel import HourlyPanel, customer_zones, load_zone_panels, reads_time_range
from features.dr.performance import EventMeasurement

log = logging.getLogger(__name__)
CV_MAX, NMBE_MAX = 30.0, 10.0


def _metrics(g: pd.DataFrame, unit: str) -> pd.DataFrame:
    """CV(RMSE) %, NMBE %, median APE % per ``unit`` from rows (unit, day, pred, actual)."""
    g = g[np.isfinite(g.pred) & np.isfinite(g.actual)]
    e = g.actual - g.pred
    agg = (
        g.assign(se=e**2, e=e)
        .groupby(["method", unit])
        .agg(n=("e", "size"), mean=("actual", "mean"), se=("se", "mean"), e=("e", "sum"))
    )
    agg["cvrmse"] = 100 * np.sqrt(agg.se) / agg["mean"]
    agg["nmbe"] = 100 * agg.e / (agg.n * agg["mean"])
    day = g.groupby(["method", unit, "day"]).agg(p=("pred", "sum"), a=("actual", "sum"))
    day["ape"] = 100 * (day.p - day.a).abs() / day.a.where(day.a > 0)
    agg["mape"] = day.groupby(["method", unit]).ape.median()
    return agg[["n", "mean", "cvrmse", "nmbe", "mape"]].reset_index()


def accuracy_table(long: pd.DataFrame) -> pd.DataFrame:
    """Per method: median customer CV(RMSE), |NMBE| and APE, share meeting Guideline 14, and
    the portfolio's CV(RMSE), NMBE and APE. ``long``: method, customer_id, day, hour, pred,
    actual (one row per customer-hour)."""
    per = _metrics(long, "customer_id")
    per = per[np.isfinite(per.cvrmse)]
    ok = (per.cvrmse <= CV_MAX) & (per.nmbe.abs() <= NMBE_MAX)
    cust = (
        per.assign(ok=ok, abs_nmbe=per.nmbe.abs())
        .groupby("method")
        .agg(
            customers=("customer_id", "size"),
            cvrmse_median=("cvrmse", "median"),
            abs_nmbe_median=("abs_nmbe", "median"),
            nmbe_mean=("nmbe", "mean"),
            mape_median=("mape", "median"),
            ashrae_share=("ok", "mean"),
        )
    )
    both = long[np.isfinite(long.pred) & np.isfinite(long.actual)]
    port = both.groupby(["method", "day", "hour"]).agg(
        pred=("pred", "sum"), actual=("actual", "sum")
    )
    port = _metrics(port.reset_index().assign(unit="portfolio"), "unit").set_index("method")
    cust["portfolio_cvrmse"] = port.cvrmse
    cust["portfolio_nmbe"] = port.nmbe
    cust["portfolio_mape"] = port.mape
    order = [m for m in (*METHODS, "opendsm_hourly") if m in cust.index]
    return cust.loc[order]


def render_table(t: pd.DataFrame, title: str) -> str:
    lines = [
        title,
        f"  {'method':<15}{'homes':>6}{'CV(RMSE)%':>10}{'|NMBE|%':>8}{'NMBE%':>7}{'medAPE%':>8}"
        f"{'G14 ok':>7} | {'portfolio CV%':>13}{'NMBE%':>7}{'medAPE%':>8}",
    ]
    for m, r in t.iterrows():
        lines.append(
            f"  {m:<15}{int(r.customers):>6}{r.cvrmse_median:>10.1f}{r.abs_nmbe_median:>8.1f}"
            f"{r.nmbe_mean:>7.1f}{r.mape_median:>8.1f}{r.ashrae_share:>7.0%} | "
            f"{r.portfolio_cvrmse:>13.1f}{r.portfolio_nmbe:>7.1f}{r.portfolio_mape:>8.1f}"
        )
    return "\n".join(lines)


def long_frame(
    customers: np.ndarray, day: str, start: int, preds: dict[str, np.ndarray], actual: np.ndarray
) -> pd.DataFrame:
    """Rows (method, customer_id, day, hour, pred, actual) from (C, H) arrays."""
    C, H = actual.shape
    frames = [
        pd.DataFrame(
            {
                "method": m,
                "customer_id": np.repeat(customers, H),
                "day": day,
                "hour": np.tile(np.arange(start, start + H), C),
                "pred": p.ravel(),
                "actual": actual.ravel(),
            }
        )
        for m, p in preds.items()
    ]
    return pd.concat(frames, ignore_index=True)


def placebo_days(panel: HourlyPanel, blocked: np.ndarray, n: int, history: int) -> list[int]:
    """``n`` weekdays spread over the panel with no event for anyone and enough history."""
    cand = np.flatnonzero(~panel.day_off & ~blocked & (np.arange(panel.n_days) >= history))
    if cand.size <= n:
        return cand.tolist()
    return cand[np.linspace(0, cand.size - 1, n).round().astype(int)].tolist()


def placebo_evaluation(
    dataset_dir: Path,
    cfg: DRConfig,
    *,
    methods: tuple[str, ...] = METHODS,
    customers: list[str] | None = None,
    kinds: tuple[str, ...] = ("dr",),
) -> pd.DataFrame:
    """Baselines on non-event weekdays, against what was metered: the long frame."""
    zones = customer_zones(dataset_dir, customers)
    events = read_events(dataset_dir, kinds)
    parts = read_participants(dataset_dir)
    s, e = cfg.evaluation.placebo_hours
    frames = []
    first, last = _data_days(dataset_dir)
    panels = load_zone_panels(dataset_dir, zones, first, last, calendar=cfg.baselines.holidays)
    for panel in panels.values():
        excl = event_days(panel, events, parts)
        blocked = _event_dates(panel, events)
        days = placebo_days(panel, blocked, cfg.evaluation.placebo_days, cfg.baselines.history_days)
        for d in days:  # a few placebo days, each over every customer at once
            win = EventWindow(d, s, e)
            preds = compute_baselines(panel, win, cfg.baselines, excl, methods)
            frames.append(
                long_frame(panel.customers, str(panel.dates()[d]), s, preds, panel.kwh[:, d, s:e])
            )
    return pd.concat(frames, ignore_index=True)


def _data_days(dataset_dir: Path) -> tuple[dt.date, dt.date]:
    """Whole days of reads (a day of margin at each end for the time-zone offset)."""
    lo, hi = reads_time_range(dataset_dir)
    return lo.date() + dt.timedelta(days=1), hi.date() - dt.timedelta(days=1)


def _event_dates(panel: HourlyPanel, events: pd.DataFrame) -> np.ndarray:
    """(D,) local days on which any event of these kinds happened."""
    from features.dr.events import to_us
    from features.dr.panel import HOUR_US, local_hours

    out = np.zeros(panel.n_days, bool)
    if events.empty:
        return out
    lh = local_hours(to_us(events["start"]) // HOUR_US, panel.tz)
    d = lh // 24 - (panel.first_day - dt.date(1970, 1, 1)).days
    out[d[(d >= 0) & (d < panel.n_days)]] = True
    return out


def event_long_frame(measurements: list[EventMeasurement]) -> pd.DataFrame:
    """Long frame of event-hour baselines with the metered load as ``actual``."""
    return pd.concat(
        [
            long_frame(m.customers, m.event_id, m.start, m.baselines, m.metered)
            for m in measurements
        ],
        ignore_index=True,
    )
