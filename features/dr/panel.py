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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


def _files(dataset_dir: Path, lo: pd.Timestamp, hi: pd.Timestamp) -> list[Path]:
    """Parquet files of interval reads that can hold ``lo`` .. ``hi`` (month partitions)."""
    reads = table_dir(dataset_dir, "interval_reads")
    if not reads.exists():
        raise DataError(f"{dataset_dir} has no interval_reads")
    months = pd.period_range(lo.tz_localize(None), hi.tz_localize(None), freq="M")
    files = [p for m in months for p in sorted((reads / f"month={m}").glob("*.parquet"))]
    if not files and not any(reads.glob("month=*")):  # an unpartitioned layout
        files = sorted(reads.rglob("*.parquet"))
    return files


def reads_time_range(dataset_dir: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last interval-read timestamps (UTC), from the parquet footers' statistics
    (no scan of the reads; a file without statistics is scanned by DuckDB)."""
    reads = table_dir(dataset_dir, "interval_reads")
    files = sorted(reads.rglob("*.parquet")) if reads.exists() else []
    if not files:
        raise DataError(f"{dataset_dir} has no interval reads")
    lo, hi = [], []
    for f in files:
        md = pq.ParquetFile(f).metadata
        i = md.schema.to_arrow_schema().names.index("ts")
        for g in range(md.num_row_groups):
            if md.row_group(g).num_rows == 0:
                continue
            st = md.row_group(g).column(i).statistics
            if st is None or not st.has_min_max:
                (a, b) = duckdb.connect().execute(
                    f"SELECT min(ts), max(ts) FROM read_parquet('{f}', hive_partitioning=false)"
                ).fetchone() or (None, None)
                if a is not None:
                    lo.append(pd.Timestamp(a))
                    hi.append(pd.Timestamp(b))
                break
            lo.append(pd.Timestamp(st.min))
            hi.append(pd.Timestamp(st.max))
    if not lo:
        raise DataError(f"{dataset_dir} has no interval reads")
    utc = [
        t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        for t in (min(lo), max(hi))
    ]
    return utc[0], utc[1]


def _row_groups(pf: pq.ParquetFile, lo_us: int, hi_us: int, m_lo: str, m_hi: str) -> list[int]:
    """Row groups whose ts and meter_id statistics overlap the wanted range (pushdown)."""
    names = pf.schema_arrow.names
    its, imid = names.index("ts"), names.index("meter_id")
    keep = []
    for i in range(pf.metadata.num_row_groups):
        rg = pf.metadata.row_group(i)
        st, sm = rg.column(its).statistics, rg.column(imid).statistics
        if st is not None and st.has_min_max:
            t0 = pd.Timestamp(st.min).value // 1000
            t1 = pd.Timestamp(st.max).value // 1000
            if t1 < lo_us or t0 >= hi_us:
                continue
        if sm is not None and sm.has_min_max and (str(sm.max) < m_lo or str(sm.min) > m_hi):
            continue
        keep.append(i)
    return keep


def _scan_file(
    path: Path, meter_index: pd.Index, uh0: int, nh: int, lo_us: int, hi_us: int
) -> list[tuple[np.ndarray, int, np.ndarray, np.ndarray]]:
    """Hourly sums and reading counts of one file's wanted meters: [(rows, h0, sums, counts)].

    Meter ids stay dictionary codes: the grid is built per dictionary entry with one
    ``bincount`` and only then mapped to panel rows (unwanted meters dropped).
    """
    pf = pq.ParquetFile(path, read_dictionary=["meter_id"])
    rgs = _row_groups(pf, lo_us, hi_us, str(meter_index.min()), str(meter_index.max()))
    if not rgs:
        return []
    tbl = pf.read_row_groups(rgs, columns=["meter_id", "ts", "kwh"], use_threads=False)
    out = []
    for batch in tbl.to_batches():
        mid = batch.column(0)
        if not pa.types.is_dictionary(mid.type):
            mid = mid.dictionary_encode()
        lut = meter_index.get_indexer(mid.dictionary.to_pylist())
        if not (lut >= 0).any():
            continue
        ts = batch.column(1).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        uh = (ts.to_numpy(zero_copy_only=False) - uh0 * HOUR_US) // HOUR_US
        kwh_col = batch.column(2)
        kwh = kwh_col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        code = mid.indices.to_numpy(zero_copy_only=False)
        bad = kwh_col.null_count > 0 or mid.null_count > 0
        h0, h1 = int(uh.min()), int(uh.max()) + 1
        if bad or h0 < 0 or h1 > nh:  # rare: nulls, or reads outside the wanted hours
            ok = (uh >= 0) & (uh < nh)
            if kwh_col.null_count:
                ok &= kwh_col.is_valid().to_numpy(zero_copy_only=False)
            if mid.null_count:
                ok &= mid.is_valid().to_numpy(zero_copy_only=False)
            if not ok.any():
                continue
            uh, kwh, code = uh[ok], kwh[ok], code[ok]
            h0, h1 = int(uh.min()), int(uh.max()) + 1
        w, k = h1 - h0, len(lut)
        flat = code.astype(np.int64) * w + (uh - h0)
        sums = np.bincount(flat, weights=kwh, minlength=k * w).reshape(k, w)
        counts = np.bincount(flat, minlength=k * w).reshape(k, w)
        keep = np.flatnonzero(lut >= 0)
        out.append((lut[keep], h0, sums[keep], counts[keep]))
    return out


def _hourly_grid(
    dataset_dir: Path, meter_ids: list[str], lo: pd.Timestamp, hi: pd.Timestamp, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """(M, hours) sums and reading counts of ``meter_ids`` (sorted) over UTC hours lo .. hi.

    A columnar scan with Arrow: only the meter_id, ts and kwh columns of the month partitions
    and row groups that can hold the range; meter ids stay dictionary codes (a file holds a
    few hundred meters), and each file's reads are summed to hours with one ``bincount``.
    """
    uh0 = int(lo.value // 1000 // HOUR_US)
    nh = int((hi.value - lo.value) // 1000 // HOUR_US)
    M = len(meter_ids)
    sums = np.zeros((M, nh))
    counts = np.zeros((M, nh), np.int16)  # readings per meter-hour (60 at most)
    files = _files(dataset_dir, lo, hi)
    if not files or M == 0:
        return sums, counts
    index = pd.Index(meter_ids)
    lo_us, hi_us = lo.value // 1000, hi.value // 1000

    def add(parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]]) -> None:
        for rows, h0, s, c in parts:
            h1 = h0 + s.shape[1]
            r0 = int(rows[0])
            if (np.diff(rows) == 1).all():  # a file holds a run of meters: add in place
                sums[r0 : r0 + len(rows), h0:h1] += s
                counts[r0 : r0 + len(rows), h0:h1] += c
            else:
                sums[rows, h0:h1] += s
                counts[rows, h0:h1] += c

    if threads <= 1:
        for f in files:
            add(_scan_file(f, index, uh0, nh, lo_us, hi_us))
    else:  # Arrow decodes without the GIL: files in parallel, results added in order
        with ThreadPoolExecutor(threads) as pool:
            for res in pool.map(lambda f: _scan_file(f, index, uh0, nh, lo_us, hi_us), files):
                add(res)
    return sums, counts


def _region_temps(
    dataset_dir: Path,
    regions: list[str],
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(region index, UTC hour, mean temperature °C) rows of the weather table."""
    empty = np.zeros(0, np.int64)
    if not regions or not table_dir(dataset_dir, "weather").exists():
        return empty, empty, np.zeros(0)
    con = duckdb.connect(config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    con.register("regs", pa.table({"region": pa.array(regions, pa.string())}))
    w = con.execute(
        f"""SELECT region, epoch_us(ts) // {HOUR_US} AS uh, avg(temperature_c) AS t
            FROM {_glob(dataset_dir, "weather")}
            WHERE ts >= ? AND ts < ? AND region IN (SELECT region FROM regs) GROUP BY ALL""",
        [lo.to_pydatetime(), hi.to_pydatetime()],
    ).fetchnumpy()
    con.close()
    r = pd.Index(regions).get_indexer(np.asarray(w["region"]).astype(str))
    return r.astype(np.int64), np.asarray(w["uh"]).astype(np.int64), np.asarray(w["t"], float)


def load_zone_panels(
    dataset_dir: Path,
    zones: pd.DataFrame,
    first_day: dt.date,
    last_day: dt.date,
    *,
    calendar: str = "none",
    threads: int = 2,
) -> dict[str, HourlyPanel]:
    """One panel per time zone of ``zones`` (customer_id, region, tz), from ONE scan of reads.

    Local days ``first_day`` .. ``last_day`` (inclusive) in each zone. An hour with fewer
    readings than the customer's electric meters should give is NaN.
    """
    if last_day < first_day:
        raise DataError(f"empty day range {first_day} .. {last_day}")
    missing = {"customer_id", "region", "tz"} - set(zones.columns)
    if missing:
        raise DataError(f"zones lacks columns {sorted(missing)}")
    n_days = (last_day - first_day).days + 1
    # UTC range with a day of margin on each side for the zone offset
    lo = pd.Timestamp(first_day - dt.timedelta(days=1), tz="UTC")
    hi = pd.Timestamp(last_day + dt.timedelta(days=2), tz="UTC")
    uh0 = int(lo.value // 1000 // HOUR_US)
    nh = int((hi.value - lo.value) // 1000 // HOUR_US)
    zones = zones.drop_duplicates("customer_id")
    cust_all = pd.Index(sorted(set(zones.customer_id.astype(str))))
    if not _files(dataset_dir, lo, hi):
        raise DataError(f"no interval reads between {first_day} and {last_day} in {dataset_dir}")
    con = duckdb.connect(config={"threads": threads})
    con.register("want", pa.table({"customer_id": pa.array(cust_all.tolist(), pa.string())}))
    meters = con.execute(
        f"""SELECT meter_id, customer_id, 60.0 / interval_minutes AS per_h
            FROM {_glob(dataset_dir, "meters")}
            WHERE service_kind = 'electric' AND customer_id IN (SELECT customer_id FROM want)
            ORDER BY meter_id"""
    ).fetchdf()
    con.close()
    sums, counts = _hourly_grid(dataset_dir, meters.meter_id.tolist(), lo, hi, threads)
    full = counts >= meters.per_h.to_numpy()[:, None]
    del counts
    m_cust = cust_all.get_indexer(meters.customer_id)
    C = len(cust_all)
    if len(meters) == C and (m_cust == np.arange(C)).all():  # one meter each: no regrouping
        grid = sums
        grid[~full] = np.nan
    else:
        grid = np.zeros((C, nh))
        c_full = np.zeros((C, nh), np.int32)
        np.add.at(grid, m_cust, sums)
        np.add.at(c_full, m_cust, full.astype(np.int32))
        c_meters = np.bincount(m_cust, minlength=C)[:, None]
        grid[(c_full != c_meters) | (c_meters == 0)] = np.nan
        del sums, c_full
    del full
    regions = sorted(zones["region"].dropna().astype(str).unique().tolist())
    w_r, w_uh, w_t = _region_temps(dataset_dir, regions, lo, hi, threads)
    first_ord = (first_day - dt.date(1970, 1, 1)).days
    panels: dict[str, HourlyPanel] = {}
    for tz, z in zones.groupby("tz", sort=True):
        z = z.sort_values("customer_id")
        rows = cust_all.get_indexer(z.customer_id.astype(str))
        lh = local_hours(np.arange(uh0, uh0 + nh, dtype=np.int64), str(tz))
        pos = lh - first_ord * 24  # local hour index in the panel
        inside = np.flatnonzero((pos >= 0) & (pos < n_days * 24))
        p_in = pos[inside]
        if len(p_in) == n_days * 24 and (np.diff(p_in) == 1).all():  # no DST change: a slice
            a = int(inside[0])
            if len(rows) == C and (rows == np.arange(C)).all():
                kwh = grid[:, a : a + n_days * 24].reshape(C, n_days, 24).copy()
            else:
                kwh = grid[rows, a : a + n_days * 24].reshape(len(rows), n_days, 24)
        else:  # DST: a local hour missing (NaN) or doubled (the later UTC hour)
            flat = np.full((len(rows), n_days * 24), np.nan)
            flat[:, p_in] = grid[rows][:, inside]
            kwh = flat.reshape(len(rows), n_days, 24)
        zr = sorted(z["region"].dropna().astype(str).unique().tolist())
        ridx = pd.Index(zr).get_indexer(z["region"])
        temp = np.full((max(len(zr), 1), n_days, 24), np.nan)
        if len(w_uh):
            wl = local_hours(w_uh, str(tz))
            wd = wl // 24 - first_ord
            r = pd.Index(zr).get_indexer(np.asarray(regions, object)[w_r])
            ok = (wd >= 0) & (wd < n_days) & (r >= 0)
            temp[r[ok], wd[ok], wl[ok] % 24] = w_t[ok]
        panels[str(tz)] = HourlyPanel(
            customers=np.asarray(z.customer_id.astype(str).tolist(), dtype=object),
            first_day=first_day,
            kwh=kwh,
            temp_c=temp,
            region=ridx.astype(np.int64),
            regions=zr,
            day_off=holiday_days(first_day, n_days, calendar),
            tz=str(tz),
        )
    return panels


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
    """Hourly kWh of ``customers`` for local days ``first_day`` .. ``last_day`` (inclusive),
    all on the local clock of ``tz``."""
    cust = sorted(set(customers))
    zones = customer_zones(dataset_dir, cust)
    known = pd.DataFrame({"customer_id": cust}).merge(
        zones[["customer_id", "region"]], on="customer_id", how="left"
    )
    known["tz"] = tz
    return load_zone_panels(
        dataset_dir, known, first_day, last_day, calendar=calendar, threads=threads
    )[tz]
