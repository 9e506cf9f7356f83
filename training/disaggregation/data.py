"""Aggregate load as model input: meter series on a regular grid, in watts.

Everything here reads what a utility sees (interval reads, REDD mains and circuits); the
synthetic utility's appliance targets come from :mod:`training.disaggregation.oracle`.
Series are ``(meters, T)`` float32 arrays of mean power over each interval (W), NaN where a
read is missing, so that one model works across 15-, 30- and 60-minute meters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from wattwise.errors import DataError

log = logging.getLogger(__name__)

REDD_APPLIANCES = ("refrigerator", "dishwasher", "microwave", "washer_dryer")
# REDD circuit codes (digits stripped) that make up each target appliance
REDD_CIRCUITS = {
    "refrigerator": ("FRE",),
    "dishwasher": ("DWE",),
    "microwave": ("MIC",),
    "washer_dryer": ("WAD", "WDU"),
}


@dataclass
class Series:
    """Aggregate power of some meters on one regular time grid."""

    meter_ids: list[str]
    start_us: int  # first interval start, UTC epoch microseconds
    interval_minutes: int
    power_w: np.ndarray  # (meters, T) float32, NaN where missing

    @property
    def n_steps(self) -> int:
        return int(self.power_w.shape[1])

    @property
    def ts(self) -> pd.DatetimeIndex:
        """Interval starts (UTC)."""
        return pd.date_range(
            pd.Timestamp(self.start_us, unit="us", tz="UTC"),
            periods=self.n_steps,
            freq=f"{self.interval_minutes}min",
        )

    @property
    def times_s(self) -> np.ndarray:
        """Interval starts as epoch seconds (UTC), ``(T,)`` float64: the networks' time input."""
        step = self.interval_minutes * 60.0
        return self.start_us / 1e6 + np.arange(self.n_steps, dtype=np.float64) * step

    @property
    def kwh_per_w(self) -> float:
        """kWh in one interval per watt of mean power."""
        return self.interval_minutes / 60.0 / 1000.0


def utc_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC: comparing the reads' UTC times
    with ``epoch_ms(...)`` (a naive TIMESTAMP) casts it in the session zone, which is the
    machine's by default (a month read on a New York machine would start at 04:00 UTC)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def table_source(dataset_dir: Path, table: str) -> str:
    """A canonical table's parquet files as a DuckDB table expression (DataError if absent)."""
    return _glob(dataset_dir, table)


def _glob(dataset_dir: Path, table: str) -> str:
    d = dataset_dir / table
    if not d.exists():
        raise DataError(f"{dataset_dir}: no {table} table (generate or import data first)")
    return f"read_parquet('{d}/**/*.parquet', union_by_name=true)"


def _utc_month(t: pd.Timestamp) -> pd.Period:
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.tz_localize(None).to_period("M")


def reads_source(
    dataset_dir: Path, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> str:
    """The ``interval_reads`` files as a DuckDB table expression; with a period, only the
    month partitions (``month=YYYY-MM``, UTC months of ``ts``) that can hold it, and one
    month each side, so a customer's month reads a few files, not the whole history."""
    d = dataset_dir / "interval_reads"
    if start is None or end is None or not d.is_dir():
        return _glob(dataset_dir, "interval_reads")
    months = {p.name[len("month=") :]: p for p in d.glob("month=*") if p.is_dir()}
    if not months or any(p.is_file() for p in d.glob("*.parquet")):
        return _glob(dataset_dir, "interval_reads")
    lo = str(_utc_month(start) - 1)
    hi = str(_utc_month(end - pd.Timedelta(microseconds=1)) + 1)
    keep = [str(p / "**" / "*.parquet") for m, p in sorted(months.items()) if lo <= m <= hi]
    if not keep:  # nothing there: the table's columns, no rows
        first = str(next(iter(months.values())) / "**" / "*.parquet")
        return f"(select * from read_parquet({[first]!r}, union_by_name=true) limit 0)"
    return f"read_parquet({keep!r}, union_by_name=true)"


def meter_interval(dataset_dir: Path) -> int:
    """The (single) interval length of the electric meters of a dataset."""
    con = duckdb.connect()
    rows = con.execute(
        f"select distinct interval_minutes from {_glob(dataset_dir, 'meters')}"
        " where service_kind = 'electric'"
    ).fetchall()
    if len(rows) != 1:
        raise DataError(
            f"{dataset_dir}: electric meters must share one interval, found {[r[0] for r in rows]}"
        )
    return int(rows[0][0])


def customer_meters(dataset_dir: Path, customer_ids: list[str] | None = None) -> pd.DataFrame:
    """customer_id → meter_id of the electric meters (all customers when ``None``)."""
    con = duckdb.connect()
    where = ""
    if customer_ids is not None:
        con.register("want", pd.DataFrame({"customer_id": customer_ids}))
        where = "and customer_id in (select customer_id from want)"
    return con.execute(
        f"""select customer_id, meter_id from {_glob(dataset_dir, "meters")}
            where service_kind = 'electric' {where} order by meter_id"""
    ).fetchdf()


def load_series(
    dataset_dir: Path,
    meter_ids: list[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Series:
    """Imported energy of the meters as mean power on the dataset's grid (W, NaN = missing).

    ``start``/``end`` (UTC, end exclusive) bound the grid; by default it spans the reads.
    """
    interval = meter_interval(dataset_dir)
    step_us = interval * 60_000_000
    con = utc_connection()
    filt = []
    if meter_ids is not None:
        con.register("want", pd.DataFrame({"meter_id": meter_ids}))
        filt.append("meter_id in (select meter_id from want)")
    if start is not None:
        filt.append(f"ts >= epoch_ms({int(start.value // 1_000_000)})")
    if end is not None:
        filt.append(f"ts < epoch_ms({int(end.value // 1_000_000)})")
    where = ("where " + " and ".join(filt)) if filt else ""
    df = con.execute(
        f"""select meter_id, epoch_us(ts) as t, kwh from {reads_source(dataset_dir, start, end)}
            {where}"""
    ).fetchdf()
    if df.empty:
        raise DataError(f"{dataset_dir}: no interval reads for the requested meters and period")
    ids = sorted(df.meter_id.unique()) if meter_ids is None else list(meter_ids)
    t0 = int(start.value // 1000) if start is not None else int(df.t.min())
    t1 = int(end.value // 1000) if end is not None else int(df.t.max()) + step_us
    t0 -= t0 % step_us
    T = (t1 - t0 + step_us - 1) // step_us
    out = np.full((len(ids), T), np.nan, np.float32)
    row = pd.Index(ids).get_indexer(df.meter_id)
    col = (df.t.to_numpy() - t0) // step_us
    ok = (row >= 0) & (col >= 0) & (col < T) & np.isfinite(df.kwh.to_numpy())
    out[row[ok], col[ok]] = df.kwh.to_numpy(np.float32)[ok] * np.float32(60_000.0 / interval)
    return Series(ids, t0, interval, out)


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Model input without NaN: gaps linearly interpolated along time (edges held)."""
    if not np.isnan(x).any():
        return x.astype(np.float32, copy=False)
    df = pd.DataFrame(x.T)
    filled = df.interpolate(axis=0, limit_direction="both").fillna(0.0)
    return filled.to_numpy(np.float32).T.copy()


@dataclass
class ReddHouse:
    """One REDD house at one-minute resolution: mains and the target appliances (W)."""

    t_seconds: np.ndarray  # (T,) start of each minute, seconds from the recording start
    aggregate_w: np.ndarray  # (T,) NaN where no sample fell in the minute
    appliances_w: np.ndarray  # (T, A) in REDD_APPLIANCES order


def _redd_frame_to_house(df: pd.DataFrame, resample_s: int) -> ReddHouse:
    """Mean of the 3-s samples in each ``resample_s`` bin; circuits summed per appliance."""
    t = df["t_seconds"].to_numpy(np.int64)
    b = (t - t.min()) // resample_s
    n = int(b.max()) + 1
    counts = np.bincount(b, minlength=n).astype(np.float64)
    has = counts > 0

    def binned(v: np.ndarray) -> np.ndarray:
        s = np.bincount(b, weights=np.nan_to_num(v.astype(np.float64)), minlength=n)
        out = np.full(n, np.nan, np.float32)
        out[has] = (s[has] / counts[has]).astype(np.float32)
        return out

    import re

    codes = {c: re.sub(r"\d+$", "", c.upper()) for c in df.columns if c not in ("t_seconds",)}
    apps = np.zeros((n, len(REDD_APPLIANCES)), np.float32)
    for j, a in enumerate(REDD_APPLIANCES):
        cols = [c for c, code in codes.items() if code in REDD_CIRCUITS[a]]
        for c in cols:
            apps[:, j] += np.nan_to_num(binned(df[c].to_numpy()))
    apps[~has] = np.nan
    start = int(t.min()) - int(t.min()) % resample_s
    return ReddHouse(
        start + np.arange(n, dtype=np.int64) * resample_s,
        binned(df["aggregate_W"].to_numpy()),
        apps,
    )


def read_redd_csv(path: Path, resample_s: int = 60) -> tuple[pd.DataFrame, ReddHouse]:
    """A REDD house file (t_seconds, aggregate_W, circuits...) and its resampled house."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        df = pcsv.read_csv(path).to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from exc
    missing = {"t_seconds", "aggregate_W"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: not a REDD file (missing column(s) {sorted(missing)})")
    if df.empty:
        raise DataError(f"{path}: no samples")
    df = df.sort_values("t_seconds", kind="stable").reset_index(drop=True)
    if not np.isfinite(df["aggregate_W"].to_numpy(float)).any():
        raise DataError(f"{path}: aggregate_W has no finite value")
    return df, _redd_frame_to_house(df, resample_s)


def load_redd_house(
    dataset_dir: Path, meter_id: str | None = None, resample_s: int = 60
) -> ReddHouse:
    """A house imported into ``highres_power`` (``wattwise data import redd``), resampled."""
    con = duckdb.connect()
    src = _glob(dataset_dir, "highres_power")
    meters = [
        r[0] for r in con.execute(f"select distinct meter_id from {src} order by 1").fetchall()
    ]
    if not meters:
        raise DataError(f"{dataset_dir}: highres_power is empty")
    mid = meter_id or meters[0]
    if mid not in meters:
        raise DataError(f"{dataset_dir}: no highres_power for meter {mid!r} (have {meters})")
    # bin to the target resolution in SQL (one pass), then the usual per-appliance sums
    wide = con.execute(
        f"""pivot (select t_seconds // {resample_s} * {resample_s} as t_seconds, channel, watts
                   from {src} where meter_id = '{mid.replace("'", "''")}')
            on channel using avg(watts) group by t_seconds order by t_seconds"""
    ).fetchdf()
    wide = wide.rename(columns={"aggregate": "aggregate_W"})
    return _redd_frame_to_house(wide, resample_s)
