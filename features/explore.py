"""Summaries a data scientist looks at before modelling a utility's usage (notebook 01).

Every function reads a dataset (synthetic or imported) with DuckDB and returns a small
DataFrame ready to plot: load-shape segments, monthly usage by a customer attribute, the
daily-usage response to temperature, and one customer against its peers. They work on any
dataset in the canonical schema; the feature-based ones need ``wattwise features build``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from wattwise.errors import DataError

ATTRIBUTES = ("dwelling_type", "heating_fuel", "region", "tariff", "income_band", "has_ac")


def _tables(ds: Path, *names: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # no progress bar in logs; in Jupyter, DuckDB refuses the setting without ipywidgets
    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar = false")
    for name in names:
        d = ds / name
        if not d.exists():
            raise DataError(f"table {name!r} not found under {ds} (generate or import data first)")
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{d}/**/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )
    return con


def _features(ds: Path, group: str) -> pd.DataFrame:
    path = ds / "features" / f"{group}.parquet"
    if not path.exists():
        raise DataError(f"{path} not found: run `wattwise features build` first")
    return pd.read_parquet(path)


def _attribute(by: str) -> str:
    if by not in ATTRIBUTES:
        raise DataError(f"cannot group by {by!r}; choose one of {', '.join(ATTRIBUTES)}")
    return by


def segment_profiles(ds: Path) -> pd.DataFrame:
    """Mean normalised daily load shape per load-shape segment at the newest snapshot.

    Long format: ``shape_segment, hour, share`` (share of a day's kWh in that hour) and
    ``customers`` in the segment.
    """
    shape = _features(ds, "load_shape")
    latest = shape[shape.event_timestamp == shape.event_timestamp.max()]
    hours = [f"shape_h{h:02d}" for h in range(24)]
    g = latest.dropna(subset=["shape_segment"]).groupby("shape_segment")
    mean = g[hours].mean()
    mean.columns = list(range(24))
    out = mean.stack().rename("share").reset_index().rename(columns={"level_1": "hour"})
    return out.merge(g.size().rename("customers").reset_index(), on="shape_segment")


def monthly_usage(ds: Path, by: str = "dwelling_type") -> pd.DataFrame:
    """Mean electricity use per customer and month, by a customer attribute.

    Columns: ``month, <by>, kwh_per_customer, customers``.
    """
    col = _attribute(by)
    con = _tables(ds, "interval_reads", "meters", "customers")
    return con.execute(
        f"""
        WITH m AS (
          SELECT r.meter_id, date_trunc('month', r.ts) AS month, sum(r.kwh) AS kwh
          FROM interval_reads r GROUP BY ALL
        )
        SELECT m.month, CAST(c.{col} AS VARCHAR) AS {col},
          sum(m.kwh) / count(DISTINCT c.customer_id) AS kwh_per_customer,
          count(DISTINCT c.customer_id) AS customers
        FROM m JOIN meters USING (meter_id) JOIN customers c USING (customer_id)
        WHERE coalesce(meters.service_kind, 'electric') = 'electric'
        GROUP BY ALL ORDER BY 1, 2
        """
    ).df()


def temperature_response(ds: Path, by: str = "heating_fuel", bin_c: float = 2.0) -> pd.DataFrame:
    """Mean daily kWh per customer against the day's mean outdoor temperature, by group.

    The V shape (heating on the left, cooling on the right) is what the degree-day features
    (``usage_heating_slope_kwh_per_hdd``, ``usage_cooling_slope_kwh_per_cdd``) summarise per
    customer. Columns: ``<by>, temperature_c, kwh_per_day, customer_days``.
    """
    col = _attribute(by)
    if bin_c <= 0:
        raise DataError(f"bin_c must be positive, got {bin_c}")
    con = _tables(ds, "interval_reads", "meters", "customers", "weather")
    return con.execute(
        f"""
        WITH d AS (
          SELECT r.meter_id, date_trunc('day', r.ts) AS day, sum(r.kwh) AS kwh
          FROM interval_reads r GROUP BY ALL HAVING count(*) >= 20
        ), w AS (
          SELECT region, date_trunc('day', ts) AS day, avg(temperature_c) AS t
          FROM weather GROUP BY ALL
        )
        SELECT CAST(c.{col} AS VARCHAR) AS {col},
          round(w.t / {bin_c}) * {bin_c} AS temperature_c,
          avg(d.kwh) AS kwh_per_day, count(*) AS customer_days
        FROM d JOIN meters USING (meter_id) JOIN customers c USING (customer_id)
          JOIN w ON w.region IS NOT DISTINCT FROM c.region AND w.day = d.day
        WHERE coalesce(meters.service_kind, 'electric') = 'electric'
        GROUP BY ALL HAVING count(*) >= 20 ORDER BY 1, 2
        """
    ).df()


def peer_comparison(ds: Path, customer_id: str | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """One customer's 90-day mean daily kWh against its peers (same region and dwelling type).

    Returns (the customer's row, the peer group with ``is_customer``); without an id, the
    customer at the 90th percentile of the largest peer group (a "high user" letter case).
    """
    usage = _features(ds, "usage")
    peer = _features(ds, "peer")
    latest = usage.event_timestamp.max()
    u = usage[usage.event_timestamp == latest][["customer_id", "usage_mean_daily_kwh_90d"]]
    p = peer[peer.event_timestamp == latest][
        ["customer_id", "peer_percentile_90d", "peer_ratio_to_efficient_90d"]
    ]
    cust = (
        _tables(ds, "customers")
        .execute("SELECT customer_id, region, dwelling_type, floor_area_m2 FROM customers")
        .df()
    )
    df = (
        u.merge(p, on="customer_id")
        .merge(cust, on="customer_id")
        .dropna(subset=["usage_mean_daily_kwh_90d"])
    )
    if df.empty:
        raise DataError(f"no usage features at {latest} in {ds}")
    if customer_id is None:
        biggest = df.groupby(["region", "dwelling_type"]).size().idxmax()
        grp = df[(df.region == biggest[0]) & (df.dwelling_type == biggest[1])]
        q = grp.usage_mean_daily_kwh_90d.quantile(0.9)
        customer_id = str(
            grp.iloc[int(np.argmin(np.abs(grp.usage_mean_daily_kwh_90d - q)))].customer_id
        )
    me = df[df.customer_id == customer_id]
    if me.empty:
        raise DataError(f"customer {customer_id!r} has no usage features at {latest}")
    row = me.iloc[0]
    peers = df[(df.region == row.region) & (df.dwelling_type == row.dwelling_type)].copy()
    peers["is_customer"] = peers.customer_id == customer_id
    return row, peers.reset_index(drop=True)
