"""Event-level rows for the response and uplift models: participants × FeatureService × event.

One row per (event, participant), keyed at the notification time: the point-in-time join
with ``dr_response_v1`` (usage, peers, programs, engagement, past settled performance) sees
only what was known when customers were told, and event context columns (``ctx_*``) say
what the utility decides or forecasts: hours, start hour, notice, incentive, temperature.
The outcome is the settled reduction (baseline - metered, kW) of called and control rows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from features.dr.config import DRConfig
from features.dr.events import read_events, read_participants, to_us
from features.dr.panel import _glob
from features.dr.settle import settlements_dir
from wattwise.errors import DataError

log = logging.getLogger(__name__)
CONTEXT = [
    "ctx_hours",
    "ctx_start_hour_utc",
    "ctx_notice_hours",
    "ctx_incentive_per_kwh",
    "ctx_temp_mean_c",
    "ctx_temp_max_c",
    "ctx_month",
    "ctx_region_events_3d",
]


def event_context(dataset_dir: Path, events: pd.DataFrame) -> pd.DataFrame:
    """Context features of events (``ctx_*``): decisions and the temperature over the hours.

    Weather in the event hours stands in for the day-ahead forecast the planner would use.
    """
    ev = events.copy()
    con = duckdb.connect()
    con.register("ev", ev[["event_id", "region", "start", "end"]])
    w = con.execute(
        f"""SELECT e.event_id, avg(w.temperature_c) AS ctx_temp_mean_c,
                   max(w.temperature_c) AS ctx_temp_max_c
            FROM ev e JOIN {_glob(dataset_dir, "weather")} w
              ON (e.region IS NULL OR w.region = e.region)
             AND w.ts >= e.start AND w.ts < e."end"
            GROUP BY 1"""
    ).fetchdf()
    ev = ev.merge(w, on="event_id", how="left")
    start = pd.to_datetime(ev.start, utc=True)
    end = pd.to_datetime(ev["end"], utc=True)
    notified = pd.to_datetime(ev.notified_at, utc=True).fillna(start)
    ev["ctx_hours"] = (end - start).dt.total_seconds() / 3600
    ev["ctx_start_hour_utc"] = start.dt.hour.astype(float)
    ev["ctx_notice_hours"] = (start - notified).dt.total_seconds() / 3600
    ev["ctx_incentive_per_kwh"] = ev.incentive_per_kwh.astype(float)
    ev["ctx_month"] = start.dt.month.astype(float)
    # events of the same region in the 3 days before (fatigue): a self-join on a few rows
    s = to_us(ev.start)
    reg = ev.region.fillna("").to_numpy()
    same = reg[:, None] == reg[None, :]
    before = (s[None, :] < s[:, None]) & (s[None, :] > s[:, None] - 3 * 86_400_000_000)
    ev["ctx_region_events_3d"] = (same & before).sum(axis=1).astype(float)
    return ev


def derived_features(df: pd.DataFrame) -> pd.DataFrame:
    """Physical proxies of what a home can shed in the event hours (``x_*``), from the
    FeatureService and the context: trees on ~1,000 rows learn products poorly."""
    out = df.copy()
    g = out.get
    nan = pd.Series(np.nan, index=out.index)
    temp = g("ctx_temp_mean_c", nan)
    evening = g("usage_mean_daily_kwh_30d", nan) * g("usage_evening_share_90d", nan) / 3
    cdd = (temp - g("usage_cooling_balance_c", nan)).clip(lower=0)
    hdd = (g("usage_heating_balance_c", nan) - temp).clip(lower=0)
    out["x_evening_kw"] = evening
    out["x_cooling_kw"] = g("usage_cooling_slope_kwh_per_cdd", nan) * cdd / 24
    out["x_heating_kw"] = g("usage_heating_slope_kwh_per_hdd", nan) * hdd / 24
    out["x_weather_kw"] = out[["x_cooling_kw", "x_heating_kw"]].sum(axis=1, min_count=1)
    out["x_past_share_x_load"] = g("drp_mean_reduction_share", nan) * (
        out.x_weather_kw.fillna(0) + evening
    )
    return out


def as_float_features(df: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    """Every column but ``keep`` as float64 (booleans 0/1, missing NaN): one schema whether
    a point-in-time join returned ints, bools or objects with nulls for a column."""
    out = df.copy()
    for c in out.columns:
        if c in keep:
            continue
        try:
            out[c] = out[c].astype("float64")
        except (TypeError, ValueError):  # text columns stay as they are
            continue
    return out


def settled(dataset_dir: Path) -> pd.DataFrame:
    """Every stored settlement row (event_id, customer_id, called, reduction_kw, ...)."""
    files = sorted(settlements_dir(dataset_dir).glob("*.parquet"))
    if not files:
        raise DataError(
            f"no settlements in {settlements_dir(dataset_dir)}: run `wattwise dr settle --all`"
        )
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


SERVICE = "dr_response_v1"  # the FeatureService of the dr_response kind (training.kinds)


def model_frame(rows: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs: ``rows`` (keys, event context ``ctx_*``) beside the FeatureService
    values of each row (same order), as floats, with the derived ``x_*`` features.

    The one function that builds DR model inputs: training (:func:`event_rows`), planning
    (``training.dr.plan``) and the scoring service all call it.
    """
    feats = features.drop(columns=["customer_id", "event_timestamp"], errors="ignore")
    out = pd.concat([rows.reset_index(drop=True), as_float_features(feats, [])], axis=1)
    out[CONTEXT] = out[CONTEXT].astype("float64")
    return derived_features(out)


def event_context_of(
    dataset_dir: Path,
    event: dict[str, Any],
    past: pd.DataFrame,
    temperature_c: float | None = None,
) -> dict[str, float]:
    """The ``ctx_*`` values of one event (from the events table or a request) among the
    ``past`` events (for the region's recent events); the dataset's weather over the event
    hours, or ``temperature_c`` (a forecast) where given or where the dataset has none."""
    ev = {
        "event_id": event.get("event_id") or "__request__",
        "region": event.get("region"),
        "start": pd.Timestamp(event["start"]),
        "end": pd.Timestamp(event["end"]),
        "notified_at": event.get("notified_at"),
        "incentive_per_kwh": event.get("incentive_per_kwh"),
    }
    cols = ["event_id", "region", "start", "end", "notified_at", "incentive_per_kwh"]
    others = past[[c for c in cols if c in past.columns]]
    others = others[others.event_id != ev["event_id"]]
    frame = pd.concat([others, pd.DataFrame([ev])], ignore_index=True)
    for c in ("start", "end", "notified_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    ctx = event_context(dataset_dir, frame).iloc[-1]
    out = {c: float(ctx[c]) if pd.notna(ctx[c]) else float("nan") for c in CONTEXT}
    if temperature_c is not None:
        out["ctx_temp_mean_c"] = out["ctx_temp_max_c"] = float(temperature_c)
    if not np.isfinite(out["ctx_temp_mean_c"]):
        raise DataError(
            f"no weather in the dataset for the event hours {ev['start']}..{ev['end']}: give "
            "the forecast temperature (°C)"
        )
    return out


def event_frame(
    dataset_dir: Path,
    event: dict[str, Any],
    customer_ids: list[str],
    features: pd.DataFrame,
    past: pd.DataFrame,
) -> pd.DataFrame:
    """The model frame of one event for ``customer_ids``: the event's context (its
    ``temperature_c`` forecast where given) beside each customer's FeatureService values
    (``features``, same order). ``dr plan`` and ``POST /dr/predict``, ``/dr/target`` build
    their inputs here, so the same event and values give the same predictions."""
    ctx = event_context_of(dataset_dir, event, past, event.get("temperature_c"))
    rows = pd.DataFrame({"customer_id": list(customer_ids), **ctx})
    return model_frame(rows, features)


def planning_features(
    dataset_dir: Path, customer_ids: list[str], notified_at: pd.Timestamp
) -> pd.DataFrame:
    """The FeatureService values a planner sees at the notice of a proposed event.

    A notice at or after the newest feature row (an event still to come): the online
    store's latest values, which is all the scoring service reads, so the plan and
    ``/dr/target`` agree (a point-in-time join would drop values older than a view's TTL).
    An earlier notice (replaying a past day): the point-in-time join at the notice, as
    training saw that day.
    """
    from features.store import feature_time_range, historical, online, open_store

    store = open_store(dataset_dir)
    newest = pd.Timestamp(feature_time_range(dataset_dir / "features")[1])
    newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest
    if pd.Timestamp(notified_at) >= newest:
        return pd.DataFrame(online(store, SERVICE, list(customer_ids)))
    keys = pd.DataFrame({"customer_id": list(customer_ids), "event_timestamp": notified_at})
    return historical(store, SERVICE, keys)


def event_rows(dataset_dir: Path, cfg: DRConfig, with_outcome: bool = True) -> pd.DataFrame:
    """Participants of every DR event with features (point-in-time), context and outcome."""
    from features.store import historical, open_store

    events = read_events(dataset_dir)
    if events.empty:
        raise DataError(f"{dataset_dir.name} has no DR events")
    ctx = event_context(dataset_dir, events)
    parts = read_participants(dataset_dir, events.event_id.tolist())
    rows = parts.merge(ctx[["event_id", "notified_at", "start", *CONTEXT]], on="event_id")
    rows["event_timestamp"] = pd.to_datetime(rows.notified_at, utc=True).fillna(
        pd.to_datetime(rows.start, utc=True)
    )
    rows = rows.drop(columns=["notified_at"])
    if with_outcome:
        s = settled(dataset_dir)
        s = s[s.method == cfg.settlement.method]
        rows = rows.merge(
            s[["event_id", "customer_id", "reduction_kw", "baseline_kw"]],
            on=["event_id", "customer_id"],
            how="left",
        )
    rows = rows.reset_index(drop=True)
    feats = historical(open_store(dataset_dir), SERVICE, rows[["customer_id", "event_timestamp"]])
    out = model_frame(rows, feats)
    return out.sort_values(["start", "event_id", "customer_id"]).reset_index(drop=True)
