"""Appliance truth of the synthetic utility: NILM training targets and scoring.

A disaggregation model learns aggregate → appliance load, so on the synthetic utility its
*targets* are the per-interval appliance loads of the sub-metered panel
(``truth/appliance_loads``): the same role a utility's own sub-metering study would play.
That makes this module, like :mod:`training.oracle`, one of the few allowed to read
``truth/`` (tests/unit/test_truth_isolation.py allows modules named ``*oracle*``). Model
*inputs* never come from here: they are the metered reads (:mod:`.data`). Monthly truth for
every home (``truth/appliance_monthly``) scores the customer-facing breakdown.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from training.disaggregation.data import Series
from wattwise.errors import DataError


def _truth_glob(dataset_dir: Path, name: str) -> str:
    d = dataset_dir / "truth" / name
    if not d.exists():
        raise DataError(
            f"{dataset_dir}: no truth/{name} (appliance targets exist only for the synthetic "
            "utility; generate it with `wattwise data generate`)"
        )
    return f"read_parquet('{d}/**/*.parquet', union_by_name=true)"


def panel_meters(dataset_dir: Path) -> list[str]:
    """Meters of the sub-metered panel (per-interval appliance truth exists for them)."""
    con = duckdb.connect()
    rows = con.execute(
        f"select distinct meter_id from {_truth_glob(dataset_dir, 'appliance_loads')} order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def appliance_targets(dataset_dir: Path, series: Series, appliances: list[str]) -> np.ndarray:
    """(meters, T, A) true mean power (W) of each appliance on the grid of ``series``."""
    con = duckdb.connect()
    con.register("want", pd.DataFrame({"meter_id": series.meter_ids}))
    cols = ", ".join(f'"{a}"' for a in appliances)
    df = con.execute(
        f"""select meter_id, epoch_us(ts) as t, {cols}
            from {_truth_glob(dataset_dir, "appliance_loads")}
            where meter_id in (select meter_id from want)"""
    ).fetchdf()
    step_us = series.interval_minutes * 60_000_000
    out = np.full((len(series.meter_ids), series.n_steps, len(appliances)), np.nan, np.float32)
    row = pd.Index(series.meter_ids).get_indexer(df.meter_id)
    col = (df.t.to_numpy() - series.start_us) // step_us
    ok = (row >= 0) & (col >= 0) & (col < series.n_steps)
    vals = df[list(appliances)].to_numpy(np.float32) / np.float32(series.kwh_per_w)
    out[row[ok], col[ok]] = vals[ok]
    return out


def monthly_truth(dataset_dir: Path, meter_ids: list[str] | None = None) -> pd.DataFrame:
    """True kWh per appliance per meter-month (every home), with the home's total."""
    con = duckdb.connect()
    where = ""
    if meter_ids is not None:
        con.register("want", pd.DataFrame({"meter_id": meter_ids}))
        where = "where meter_id in (select meter_id from want)"
    return con.execute(
        f"select * from {_truth_glob(dataset_dir, 'appliance_monthly')} {where}"
        " order by meter_id, month"
    ).fetchdf()


def true_month_kw(
    dataset_dir: Path, customer_id: str, month: str, appliances: list[str]
) -> pd.DataFrame:
    """A panel customer's sub-metered appliance loads over a month (kW per interval), to put
    beside its predicted breakdown."""
    from training.disaggregation.data import customer_meters, load_series

    start = pd.Timestamp(f"{month}-01", tz="UTC")
    end = start + pd.offsets.MonthBegin(1)
    meters = customer_meters(dataset_dir, [customer_id])
    if meters.empty or meters.meter_id.iloc[0] not in set(panel_meters(dataset_dir)):
        raise DataError(f"customer {customer_id!r} is not on the sub-metered panel")
    s = load_series(dataset_dir, [meters.meter_id.iloc[0]], start, end)
    y = appliance_targets(dataset_dir, s, appliances)[0] / 1000.0
    return pd.DataFrame(y, index=s.ts, columns=appliances)
