"""Monthly appliance breakdown per customer, appliance detection, and the feature export.

A customer sees the share of the month's kWh that each appliance used. Predictions are
summed per UTC month; the total is the metered import (gaps interpolated), so shares of the
modelled appliances plus "other" sum to one. Detection flags a home once a month's predicted
kWh of the EV, the pool pump or cooling (HVAC while the region is above
``COOLING_TEMP_C``) exceeds the configured amount; flags carry forward (point-in-time: a row
at the 1st of a month uses only months before it).

The export writes ``<dataset>/features/appliances.parquet`` (entity ``customer_id``), which
Feast discovers as the ``appliances`` view of the ``disaggregation_v1`` FeatureService.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from training.disaggregation.data import Series, customer_meters, fill_gaps, load_series
from wattwise.errors import DataError

log = logging.getLogger(__name__)
COOLING_TEMP_C = 24.0
DETECT = {"has_ev": "ev", "has_pool": "pool_pump", "has_ac": "hvac_cooling"}
FEATURES_FILE = "appliances.parquet"


@dataclass
class Monthly:
    """Per meter-month kWh: metered total, each appliance, cooling-hour HVAC."""

    frame: pd.DataFrame  # meter_id, month, total_kwh, <appliance>..., hvac_cooling
    appliances: list[str]


def _month_index(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each UTC month on the grid and the months' first days."""
    ts = series.ts.tz_convert("UTC").tz_localize(None)
    m = ts.to_period("M")
    starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    return starts, m[starts].to_timestamp().to_numpy()


def hot_mask(dataset_dir: Path, series: Series) -> np.ndarray | None:
    """(meters, T) True where the meter's region is at or above the cooling temperature."""
    if not (dataset_dir / "weather").exists() or not (dataset_dir / "customers").exists():
        return None
    con = duckdb.connect()
    con.register("want", pd.DataFrame({"meter_id": series.meter_ids}))
    reg = con.execute(
        f"""select m.meter_id, c.region
            from read_parquet('{dataset_dir}/meters/**/*.parquet', union_by_name=true) m
            join read_parquet('{dataset_dir}/customers/**/*.parquet', union_by_name=true) c
              using (customer_id)
            where m.meter_id in (select meter_id from want)"""
    ).fetchdf()
    w = con.execute(
        f"""select region, epoch_us(ts) as t, temperature_c
            from read_parquet('{dataset_dir}/weather/**/*.parquet', union_by_name=true)"""
    ).fetchdf()
    if w.empty or reg.empty:
        return None
    grid_t = series.start_us + np.arange(series.n_steps, dtype=np.int64) * (
        series.interval_minutes * 60_000_000
    )
    hour_t = grid_t - grid_t % 3_600_000_000
    out = np.zeros((len(series.meter_ids), series.n_steps), bool)
    region_of = dict(zip(reg.meter_id, reg.region, strict=True))
    for region, g in w.groupby("region"):
        temp = pd.Series(g.temperature_c.to_numpy(), index=g.t.to_numpy())
        hot = temp.reindex(hour_t).to_numpy() >= COOLING_TEMP_C
        rows = [i for i, m in enumerate(series.meter_ids) if region_of.get(m) == region]
        out[rows] = hot
    return out


def monthly_from_predictions(
    series: Series, pred_w: np.ndarray, appliances: list[str], hot: np.ndarray | None = None
) -> pd.DataFrame:
    """Sum predictions (W, ``(meters, T, A)``) to kWh per meter-month."""
    starts, months = _month_index(series)
    k = np.float32(series.kwh_per_w)
    total = np.add.reduceat(fill_gaps(series.power_w) * k, starts, axis=1)  # (n, M)
    apps = np.add.reduceat(pred_w * k, starts, axis=1)  # (n, M, A)
    n, M = total.shape
    df = pd.DataFrame(
        {
            "meter_id": np.repeat(series.meter_ids, M),
            "month": np.tile(months, n),
            "total_kwh": total.ravel().astype(np.float64),
        }
    )
    for j, a in enumerate(appliances):
        df[a] = apps[..., j].ravel().astype(np.float64)
    if hot is not None and "hvac" in appliances:
        h = pred_w[..., appliances.index("hvac")] * hot
        df["hvac_cooling"] = np.add.reduceat(h * k, starts, axis=1).ravel().astype(np.float64)
    return df


def predict_monthly(
    dataset_dir: Path,
    predict_w: Any,
    appliances: list[str],
    meter_ids: list[str] | None = None,
    chunk: int = 100,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Monthly kWh per appliance for meters (all when ``None``), ``chunk`` meters at a time.

    ``predict_w(w, times)`` maps ``(n, T)`` W (and the reads' epoch seconds) to ``(n, T, A)`` W.
    """
    ids = meter_ids if meter_ids is not None else customer_meters(dataset_dir).meter_id.tolist()
    if not ids:
        raise DataError(f"{dataset_dir}: no electric meters")
    parts = []
    for i in range(0, len(ids), chunk):
        s = load_series(dataset_dir, ids[i : i + chunk], start, end)
        pred = predict_w(fill_gaps(s.power_w), s.times_s)
        parts.append(monthly_from_predictions(s, pred, appliances, hot_mask(dataset_dir, s)))
    return pd.concat(parts, ignore_index=True)


def shares(monthly: pd.DataFrame, appliances: list[str]) -> pd.DataFrame:
    """Each appliance's share of the month's total kWh (and "other"), summing to one."""
    tot = monthly.total_kwh.clip(lower=1e-9)
    sh = monthly[appliances].clip(lower=0).div(tot, axis=0)
    over = sh.sum(1).clip(lower=1.0)
    sh = sh.div(over, axis=0)
    sh["other"] = 1 - sh.sum(1)
    return sh


def detect(monthly: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """has_ev, has_pool, has_ac per meter-month, carried forward once seen."""
    out = monthly[["meter_id", "month"]].copy()
    for flag, col in DETECT.items():
        if col in monthly and col in thresholds:
            hit = monthly[col] > thresholds[col]
            out[flag] = hit.groupby(monthly.meter_id).cummax().astype(bool)
        else:
            out[flag] = False
    return out


def panel_breakdown_accuracy(dataset_dir: Path, cfg: Any, P: Any, est: Any) -> float:
    """Mean energy-breakdown accuracy over the test homes' months (against monthly truth)."""
    from training.disaggregation.oracle import monthly_truth

    series = P.series
    idx = [series.meter_ids.index(m) for m in P.ids["test"]]
    sub = Series(
        [series.meter_ids[i] for i in idx],
        series.start_us,
        series.interval_minutes,
        series.power_w[idx],
    )
    pred = est.predict(fill_gaps(sub.power_w), times=sub.times_s)
    mon = monthly_from_predictions(sub, pred, list(cfg.appliances))
    return float(np.mean(breakdown_vs_truth(dataset_dir, mon, list(cfg.appliances), monthly_truth)))


def breakdown_vs_truth(
    dataset_dir: Path, monthly: pd.DataFrame, appliances: list[str], truth_fn: Any
) -> np.ndarray:
    """Breakdown accuracy per meter-month; ``truth_fn`` is the oracle's monthly truth."""
    from training.disaggregation.metrics import breakdown_accuracy

    truth = truth_fn(dataset_dir, monthly.meter_id.unique().tolist())
    truth["month"] = pd.to_datetime(truth["month"]).dt.tz_localize(None)
    comps = [c for c in truth.columns if c not in ("meter_id", "month", "pv")]
    truth["true_total"] = truth[comps].sum(1)
    m = monthly.assign(month=pd.to_datetime(monthly.month)).merge(
        truth, on=["meter_id", "month"], suffixes=("", "_true")
    )
    m = m[m.true_total > 0]
    return (
        breakdown_accuracy(
            m[[f"{a}_true" for a in appliances]].to_numpy(),
            m[appliances].to_numpy(),
            m.total_kwh.to_numpy(),
        )
        if len(m)
        else np.array([np.nan])
    )


def feature_table(
    dataset_dir: Path, monthly: pd.DataFrame, appliances: list[str], thresholds: dict[str, float]
) -> pd.DataFrame:
    """One row per customer and month end: detection flags and monthly kWh shares."""
    cm = customer_meters(dataset_dir)
    flags = detect(monthly, thresholds)
    sh = shares(monthly, appliances)
    df = pd.concat([flags, sh.add_prefix("appl_share_")], axis=1)
    df["appl_total_kwh"] = monthly.total_kwh.to_numpy()
    df = df.merge(cm, on="meter_id", how="inner")
    month = pd.to_datetime(df.month)
    # a month's breakdown is known once the month is over: time it at the next 1st
    ts = (month + pd.offsets.MonthBegin(1)).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    df["event_timestamp"] = ts
    df["created_timestamp"] = ts
    cols = [
        "customer_id",
        "event_timestamp",
        "created_timestamp",
        *DETECT,
        "appl_total_kwh",
        *[f"appl_share_{a}" for a in [*appliances, "other"]],
    ]
    return df[cols].sort_values(["event_timestamp", "customer_id"]).reset_index(drop=True)


def write_features(frame: pd.DataFrame, dataset_dir: Path) -> Path:
    """Write the feature table where the feature store discovers it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = dataset_dir / "features"
    out.mkdir(parents=True, exist_ok=True)
    t = pa.Table.from_pandas(frame, preserve_index=False)
    t = t.cast(
        pa.schema(
            [
                pa.field(f.name, pa.float32())
                if pa.types.is_floating(f.type)
                else pa.field(f.name, f.type)
                for f in t.schema
            ]
        )
    )
    path = out / FEATURES_FILE
    pq.write_table(t, path)
    return path


def detection_scores(dataset_dir: Path, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Precision and recall of the last month's flags against the customers table's
    has_ev / has_pool / has_ac (what the utility's records say, where it has them)."""
    con = duckdb.connect()
    cust = con.execute(
        f"""select customer_id, has_ev, has_pool, has_ac
            from read_parquet('{dataset_dir}/customers/**/*.parquet', union_by_name=true)"""
    ).fetchdf()
    last = frame.sort_values("event_timestamp").groupby("customer_id").tail(1)
    m = last.merge(cust, on="customer_id", suffixes=("", "_known"))
    out = {}
    for flag in DETECT:
        known = m[f"{flag}_known"]
        ok = known.notna()
        y, p = known[ok].astype(bool).to_numpy(), m.loc[ok, flag].astype(bool).to_numpy()
        tp = float((y & p).sum())
        out[flag] = {
            "precision": tp / p.sum() if p.sum() else float("nan"),
            "recall": tp / y.sum() if y.sum() else float("nan"),
            "positives": float(y.sum()),
            "flagged": float(p.sum()),
        }
    return out
