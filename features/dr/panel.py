"""Hourly load panels: customers × local days × 24 hours of kWh, with each region's temperature.

Every baseline works on the same dense arrays, so the work is array arithmetic over all
customers at once. One DuckDB query sums a window of interval reads to UTC hours per
customer (electric meters only); numpy maps UTC hours to the local clock of the event's
time zone (offsets from the IANA rules, so DST days simply have one hour missing or doubled)
and scatters them into the panel. An hour with fewer readings than its meters should give is
missing (NaN), not a low value.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from features.tables import table_dir
from wattwise.errors import DataError

log = logging.getLogger(__name__)
HOUR_US = 3_600_000_000


@dataclass
class HourlyPanel:
    """Dense hourly arrays for one time zone: ``kwh[c, d, h]`` and ``temp_c[region[c], d, h]``."""

    customers: np.ndarray  # (C,) customer ids
    first_day: dt.date  # local date of day index 0
    kwh: np.ndarray  # (C, D, 24) float64, NaN = missing
    temp_c: np.ndarray  # (R, D, 24) float64, NaN = missing
    region: np.ndarray  # (C,) index into regions (-1: unknown)
    regions: list[str]
    day_off: np.ndarray  # (D,) weekend or holiday
    tz: str

    @property
    def n_days(self) -> int:
        return int(self.kwh.shape[1])

    def day_index(self, day: dt.date) -> int:
        i = (day - self.first_day).days
        if not 0 <= i < self.n_days:
            raise DataError(f"{day} is outside the loaded days {self.first_day} .. +{self.n_days}")
        return i

    def dates(self) -> list[dt.date]:
        return [self.first_day + dt.timedelta(days=i) for i in range(self.n_days)]

    def customer_temp(self) -> np.ndarray:
        """(C, D, 24) temperature of each customer's region (NaN where unknown)."""
        t = np.concatenate([self.temp_c, np.full((1, *self.temp_c.shape[1:]), np.nan)])
        return t[np.where(self.region >= 0, self.region, len(self.regions))]

    def subset(self, rows: np.ndarray) -> HourlyPanel:
        """The panel of some customers (boolean mask or indices)."""
        return HourlyPanel(
            self.customers[rows],
            self.first_day,
            self.kwh[rows],
            self.temp_c,
            self.region[rows],
            self.regions,
            self.day_off,
            self.tz,
        )


def _glob(dataset_dir: Path, name: str) -> str:
    d = table_dir(dataset_dir, name)
    if not d.exists():
        raise DataError(f"{dataset_dir} has no {name} table")
    return f"read_parquet('{d}/**/*.parquet', hive_partitioning=false, union_by_name=true)"


def local_hours(utc_hours: np.ndarray, tz: str) -> np.ndarray:
    """Local hour numbers (hours since 1970-01-01 local) of UTC hour numbers in zone ``tz``."""
    if utc_hours.size == 0:
        return utc_hours.astype(np.int64)
    lo, hi = int(utc_hours.min()), int(utc_hours.max())
    idx = pd.date_range(
        pd.Timestamp(lo * HOUR_US, unit="us", tz="UTC"),
        pd.Timestamp(hi * HOUR_US, unit="us", tz="UTC"),
        freq="h",
    )
    try:
        loc = idx.tz_convert(tz)
    except Exception as exc:  # zoneinfo raises its own errors for unknown names
        raise DataError(f"unknown time zone {tz!r}") from exc
    off_h = ((loc.tz_localize(None) - idx.tz_localize(None)) // pd.Timedelta(hours=1)).to_numpy()
    return utc_hours + off_h.astype(np.int64)[utc_hours - lo]


def holiday_days(first: dt.date, n_days: int, calendar: str) -> np.ndarray:
    """(D,) weekend or public holiday."""
    days = [first + dt.timedelta(days=i) for i in range(n_days)]
    off = np.array([d.weekday() >= 5 for d in days])
    if calendar == "us":
        from features.synth.clock import holidays

        hol = holidays(range(first.year, days[-1].year + 1))
        off |= np.array([d in hol for d in days])
    return off


def customer_zones(dataset_dir: Path, customers: list[str] | None = None) -> pd.DataFrame:
    """customer_id, region and time zone (of its first electric meter) of each customer."""
    con = duckdb.connect()
    where = ""
    if customers is not None:
        con.register("want", pa.table({"customer_id": pa.array(customers, pa.string())}))
        where = "WHERE c.customer_id IN (SELECT customer_id FROM want)"
    return con.execute(
        f"""SELECT c.customer_id, c.region, coalesce(min(m.timezone), 'UTC') AS tz
            FROM {_glob(dataset_dir, "customers")} c
            LEFT JOIN {_glob(dataset_dir, "meters")} m
              ON m.customer_id = c.customer_id AND m.service_kind = 'electric'
            {where} GROUP BY ALL ORDER BY c.customer_id"""
    ).fetchdf()


def load_panel(
    dataset_dir: Path,
    customers: list[str],
    first_day: dt.date,
    last_day: dt.date,
    tz: str,
    *,
    calendar: str = "none",
    threads: int = 2,
) -> HourlyPanel:
    """Hourly kWh of ``customers`` for local days ``first_day`` .. ``last_day`` (inclusive)."""
    if last_day < first_day:
        raise DataError(f"empty day range {first_day} .. {last_day}")
    n_days = (last_day - first_day).days + 1
    cust = np.asarray(sorted(set(customers)), dtype=object)
    # UTC range with a day of margin on each side for the zone offset
    lo = pd.Timestamp(first_day - dt.timedelta(days=1), tz="UTC")
    hi = pd.Timestamp(last_day + dt.timedelta(days=2), tz="UTC")
    con = duckdb.connect(config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.register("want", pa.table({"customer_id": pa.array(cust.tolist(), pa.string())}))
    reads = table_dir(dataset_dir, "interval_reads")
    if not reads.exists():
        raise DataError(f"{dataset_dir} has no interval_reads")
    months = pd.period_range(lo.tz_localize(None), hi.tz_localize(None), freq="M")
    files = [str(p) for m in months for p in sorted((reads / f"month={m}").glob("*.parquet"))]
    if not files:  # an unpartitioned layout: read everything and filter
        files = [str(p) for p in sorted(reads.rglob("*.parquet"))]
    if not files:
        raise DataError(f"no interval reads between {first_day} and {last_day} in {dataset_dir}")
    meters = con.execute(
        f"""SELECT meter_id, customer_id, 60.0 / interval_minutes AS per_h
            FROM {_glob(dataset_dir, "meters")}
            WHERE service_kind = 'electric' AND customer_id IN (SELECT customer_id FROM want)
            ORDER BY meter_id"""
    ).fetchdf()
    kwh = np.full((len(cust), n_days, 24), np.nan)
    if len(meters):
        # meter ids as an ENUM: the scan returns small integer codes, not strings to hash
        con.register("mt", pa.table({"meter_id": pa.array(meters.meter_id.tolist(), pa.string())}))
        con.execute("CREATE TYPE mid AS ENUM (SELECT meter_id FROM mt)")
        res = con.execute(
            f"""SELECT enum_code(try_cast(meter_id AS mid))::INTEGER AS code,
                       epoch_us(ts) // {HOUR_US} AS uh, kwh
                FROM read_parquet({files!r}, hive_partitioning=false)
                WHERE ts >= ? AND ts < ? AND kwh IS NOT NULL
                  AND try_cast(meter_id AS mid) IS NOT NULL""",
            [lo.to_pydatetime(), hi.to_pydatetime()],
        ).arrow()
        tbl = res.read_all() if hasattr(res, "read_all") else res
        uh0 = int(lo.value // 1000 // HOUR_US)
        nh = int((hi.value - lo.value) // 1000 // HOUR_US)
        code = tbl.column("code").to_numpy().astype(np.int64)
        flat = code * nh + (tbl.column("uh").to_numpy().astype(np.int64) - uh0)
        M = len(meters)
        sums = np.bincount(flat, weights=tbl.column("kwh").to_numpy(), minlength=M * nh)
        full = np.bincount(flat, minlength=M * nh) >= np.repeat(meters.per_h.to_numpy(), nh)
        m_cust = pd.Index(cust).get_indexer(meters.customer_id)
        cflat = np.repeat(m_cust * nh, nh) + np.tile(np.arange(nh), M)
        c_sum = np.bincount(cflat, weights=sums, minlength=len(cust) * nh)
        c_full = np.bincount(cflat, weights=full, minlength=len(cust) * nh)
        c_meters = np.bincount(m_cust, minlength=len(cust))
        ok_ch = (c_full == np.repeat(c_meters, nh)) & (np.repeat(c_meters, nh) > 0)
        lh = local_hours(np.arange(uh0, uh0 + nh, dtype=np.int64), tz)
        d = lh // 24 - (first_day - dt.date(1970, 1, 1)).days
        inside = (d >= 0) & (d < n_days)
        grid = np.where(ok_ch, c_sum, np.nan).reshape(len(cust), nh)
        kwh[:, d[inside], lh[inside] % 24] = grid[:, inside]
    zones = customer_zones(dataset_dir, cust.tolist())
    regions = sorted(zones["region"].dropna().unique().tolist())
    reg_of = dict(zip(zones["customer_id"], zones["region"], strict=True))
    ridx = pd.Index(regions).get_indexer([reg_of.get(c) for c in cust])
    temp = np.full((max(len(regions), 1), n_days, 24), np.nan)
    if regions and table_dir(dataset_dir, "weather").exists():
        con.register("regs", pa.table({"region": pa.array(regions, pa.string())}))
        w = con.execute(
            f"""SELECT region, epoch_us(ts) // {HOUR_US} AS uh, avg(temperature_c) AS t
                FROM {_glob(dataset_dir, "weather")}
                WHERE ts >= ? AND ts < ? AND region IN (SELECT region FROM regs) GROUP BY ALL""",
            [lo.to_pydatetime(), hi.to_pydatetime()],
        ).fetchnumpy()
        if len(w["uh"]):
            lh = local_hours(np.asarray(w["uh"]).astype(np.int64), tz)
            d = lh // 24 - (first_day - dt.date(1970, 1, 1)).days
            r = pd.Index(regions).get_indexer(np.asarray(w["region"]).astype(str))
            ok = (d >= 0) & (d < n_days)
            temp[r[ok], d[ok], lh[ok] % 24] = np.asarray(w["t"], float)[ok]
    con.close()
    return HourlyPanel(
        customers=cust,
        first_day=first_day,
        kwh=kwh,
        temp_c=temp,
        region=ridx.astype(np.int64),
        regions=regions,
        day_off=holiday_days(first_day, n_days, calendar),
        tz=tz,
    )
