"""The heavy pass over interval_reads and the small tables every reads feature uses.

The scan (:mod:`scan`) gives per-file partials; here they become the per (customer, local
day) arrays (``cday``: sums, maxima, overnight bit masks, cover, period ``p`` = the first
snapshot the day ends before), ``cstart`` (first complete day per customer, for the row
rule) and the hourly window tables ``shwin``/``rwin`` (:mod:`windowstats`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.pipeline.config import FeatureConfig
from features.pipeline.scan import ScanContext, scan_reads
from features.pipeline.sources import DAY_US
from features.pipeline.windowstats import hour_windows

log = logging.getLogger(__name__)

WINDOW_OF_FIRST_PERIOD_DAYS = 31


def build_meter_table(con: duckdb.DuckDBPyConnection) -> None:
    """Electric meters with an integer id (integer keys aggregate much faster than strings)."""
    con.execute(
        """CREATE OR REPLACE TABLE m AS
        SELECT meter_id, customer_id, coalesce(timezone, 'UTC') AS tz,
               coalesce(interval_minutes, 30)::INTEGER AS imin,
               (row_number() OVER (ORDER BY meter_id))::BIGINT AS idx
        FROM src_meters WHERE coalesce(service_kind, 'electric') = 'electric'"""
    )


def scan_context(
    con: duckdb.DuckDBPyConnection, cfg: FeatureConfig, zones: dict[str, list[tuple[int, int]]]
) -> ScanContext:
    """Meters (in ``idx`` order), their zones' offset pieces and the snapshots, for the scan."""
    meters = con.execute("SELECT meter_id, imin, tz FROM m ORDER BY idx").fetchnumpy()
    names = list(zones)
    snaps = np.array([r[0] for r in con.execute("SELECT S FROM snaps ORDER BY si").fetchall()])
    return ScanContext(
        meter_ids=np.asarray(meters["meter_id"]).astype(str).tolist(),
        imin=np.asarray(meters["imin"], np.int64),
        zone=pd.Index(names).get_indexer(np.asarray(meters["tz"]).astype(str)).astype(np.int32),
        zone_bounds=[np.array([b for b, _ in zones[tz][1:]], np.int64) for tz in names],
        zone_offs=[np.array([o for _, o in zones[tz]], np.int64) for tz in names],
        snaps_us=snaps,
        ev_kw=cfg.ev_kw,
        first_period_days=WINDOW_OF_FIRST_PERIOD_DAYS,
        win_snaps_us=snaps if cfg.windows_all_snapshots else snaps[-1:],
        window_days=cfg.window_days,
    )


def heavy_passes(
    con: duckdb.DuckDBPyConnection,
    cfg: FeatureConfig,
    zones: dict[str, list[tuple[int, int]]],
    files: list[Path],
    *,
    force_pool: bool = False,
) -> tuple[dict[str, np.ndarray], pa.Array, dict[str, np.ndarray]]:
    """Aggregate interval_reads into per-day arrays and small window tables: one numpy scan.

    The scan (:mod:`scan`) returns per-file partials keyed by meter ``idx``; a local day can
    span two monthly files, so :func:`customer_days` merges them (counts decide NULL like
    SQL's ``sum`` of no rows). Registers ``cstart``, ``shwin`` and ``rwin`` in DuckDB and
    returns the day arrays, the customer ids of their codes and the reads of the windows.
    """
    t = time.perf_counter()
    day, hour, win = scan_reads(
        files, scan_context(con, cfg, zones), cfg.threads, force_pool=force_pool
    )
    log.info(
        "scan of %d interval_reads files: %.1f s (%d day, %d hour partial rows)",
        len(files), time.perf_counter() - t, day.num_rows, hour.num_rows,
    )  # fmt: skip
    t = time.perf_counter()
    meters = con.execute("SELECT customer_id, imin FROM m ORDER BY idx").arrow()
    meters = meters.read_all() if hasattr(meters, "read_all") else meters
    snaps = np.array([r[0] for r in con.execute("SELECT S FROM snaps ORDER BY si").fetchall()])
    cday, arrays = customer_days(day, meters, snaps, cfg.complete_day_share)
    customers = arrays.pop("_customers")
    meter_cust = arrays.pop("_meter_cust")
    del day
    # rows start after a customer's first complete day: only that is needed in SQL
    comp = np.flatnonzero(arrays["complete"])
    with_days = np.unique(arrays["cc"])
    first_cc, first_at = np.unique(arrays["cc"][comp], return_index=True)
    first_end = np.full(len(customers), np.iinfo(np.int64).max)
    first_end[first_cc] = arrays["day_end"][comp[first_at]]
    cstart = pa.table(
        {
            "customer_id": customers.take(pa.array(with_days)),
            "first_end": pa.array(first_end[with_days], mask=~np.isin(with_days, first_cc)),
        }
    )
    con.register("cstart_res", cstart)
    con.execute("CREATE OR REPLACE TABLE cstart AS SELECT * FROM cstart_res")
    con.unregister("cstart_res")
    del cday
    log.info("cday from the partials: %.1f s", time.perf_counter() - t)
    t = time.perf_counter()
    imin = meters.column("imin").to_numpy().astype(np.int64)
    shwin, rwin = hour_windows(hour, meter_cust, imin, customers, len(snaps))
    del hour
    for name, tbl in (("shwin", shwin), ("rwin", rwin)):
        con.register(f"{name}_res", tbl)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_res")
        con.unregister(f"{name}_res")
    log.info("3- and 12-period hourly windows: %.1f s", time.perf_counter() - t)
    return arrays, customers, win


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal keys (arrays already sorted by those keys)."""
    n = len(keys[0])
    if n == 0:
        return np.empty(0, np.int64)
    brk = np.zeros(n - 1, bool)
    for k in keys:
        brk |= k[1:] != k[:-1]
    return np.concatenate([[0], np.flatnonzero(brk) + 1])


def customer_days(
    day: pa.Table, meters: pa.Table, snaps_us: np.ndarray, complete_share: float
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """``cday`` from the scan's day partials: merge per (meter, day), then per (customer, day).

    Same definitions as the SQL it replaced: NULL where a sum had no non-null read, kW from
    FLOAT arithmetic, cover = the worst meter's share of intervals, ``night_mask`` = the
    morning bits | the previous day's evening bits (NULL without morning bits), ``p`` =
    the first snapshot at or after the day's UTC end.
    """
    c = {f: day.column(f).to_numpy(zero_copy_only=False) for f in day.column_names}
    kmax = c["kwh_max"]
    dd = c["d"].astype(np.int64)
    span = int(dd.max() - dd.min() + 1) if len(dd) else 1
    order = np.argsort(c["idx"] * span + (dd - (dd.min() if len(dd) else 0)), kind="stable")
    c = {k: v[order] for k, v in c.items()}
    st = _runs(c["idx"], c["d"])
    add = lambda f: np.add.reduceat(c[f], st) if len(st) else c[f][:0]  # noqa: E731
    md = {f: add(f) for f in ("n", "kwh", "n_exp", "kexp", "n_night", "knight", "n_peak")}
    md |= {f: add(f) for f in ("kpeak", "n_eve", "keve")}
    kmax = np.fmax.reduceat(kmax[order], st) if len(st) else kmax[:0]
    off_min = np.minimum.reduceat(c["off_min"], st) if len(st) else c["off_min"][:0]
    me = np.bitwise_or.reduceat(c["me"], st) if len(st) else c["me"][:0]
    mm = np.bitwise_or.reduceat(c["mm"], st) if len(st) else c["mm"][:0]
    idx, d = c["idx"][st], c["d"][st].astype(np.int64)
    imin = meters.column("imin").to_numpy().astype(np.int64)[idx - 1]
    cust_all = meters.column("customer_id")
    cust_codes = pc.dictionary_encode(cust_all).combine_chunks()
    ccode = cust_codes.indices.to_numpy()[idx - 1]
    n = md["n"]
    kw = kmax * np.float32(60.0) / imin.astype(np.float32)
    # second level: customers with several meters (skipped when every customer has one)
    codes_all = cust_codes.indices.to_numpy()
    single = len(np.unique(codes_all)) == len(codes_all)
    order = np.arange(len(d)) if single else np.lexsort((d, ccode))
    st2 = order if single else _runs(ccode[order], d[order])

    def red(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
        if single:
            return x
        return ufunc.reduceat(x[order], st2) if len(st2) else x[:0]

    nn = red(np.add, n)
    out_d = d[order][st2]
    cc = ccode[order][st2]
    cols: dict[str, pa.Array] = {}

    def nul(x: np.ndarray, cnt: np.ndarray) -> pa.Array:
        return pa.array(x, mask=cnt == 0)

    cols["customer_id"] = cust_codes.dictionary.take(pa.array(cc))
    cols["d"] = pa.array(out_d.astype(np.int32))
    cols["n"] = pa.array(nn)
    cols["kwh"] = nul(red(np.add, md["kwh"]), nn)
    kwm = red(np.fmax, kw)
    cols["kw_max"] = pa.array(kwm, mask=np.isnan(kwm))
    cols["kexp"] = nul(red(np.add, md["kexp"]), red(np.add, md["n_exp"]))
    cols["kpeak"] = nul(red(np.add, md["kpeak"]), red(np.add, md["n_peak"]))
    cols["keve"] = nul(red(np.add, md["keve"]), red(np.add, md["n_eve"]))
    cols["knight"] = nul(red(np.add, md["knight"]), red(np.add, md["n_night"]))
    cols["night_h"] = pa.array(red(np.add, md["n_night"] * imin / 60.0))
    cols["hours"] = pa.array(red(np.add, n * imin / 60.0))
    me2, mm2 = red(np.bitwise_or, me), red(np.bitwise_or, mm)
    cols["me"] = pa.array(me2, mask=me2 == 0)
    cols["mm"] = pa.array(mm2, mask=mm2 == 0)
    cover = red(np.minimum, n * imin / 1440.0)
    cols["cover"] = pa.array(cover)
    day_end = (out_d + 1) * DAY_US - red(np.minimum, off_min)
    cols["day_end"] = pa.array(day_end)
    cols["complete"] = pa.array(cover >= complete_share)
    cols["weekend"] = pa.array(np.isin((out_d + 4) % 7, (0, 6)))
    prev = np.zeros(len(out_d), bool)
    prev[1:] = (cc[1:] == cc[:-1]) & (out_d[1:] == out_d[:-1] + 1)
    prev_me = np.zeros(len(out_d), np.uint64)
    prev_me[1:] = me2[:-1]
    night = np.where(prev, mm2 | prev_me, mm2)
    cols["night_mask"] = pa.array(night, mask=mm2 == 0)
    p = np.searchsorted(snaps_us, day_end, side="left")
    cols["p"] = pa.array((p + 1).astype(np.int32), mask=p >= len(snaps_us))
    nan = lambda a: cols[a].to_numpy(zero_copy_only=False).astype(np.float64)  # noqa: E731
    arrays = {
        "cc": cc,
        "d": out_d,
        "p": np.where(p >= len(snaps_us), -1, p + 1),
        "day_end": day_end,
        "complete": cover >= complete_share,
        "weekend": np.isin((out_d + 4) % 7, (0, 6)),
        "ev": (mm2 != 0) & ((night & (night >> np.uint64(1))) != 0),
        **{f: nan(f) for f in ("kwh", "kpeak", "keve", "knight", "kexp", "kw_max")},
        **{f: cols[f].to_numpy() for f in ("hours", "night_h")},
        "_customers": cust_codes.dictionary,
        "_meter_cust": cust_codes.indices.to_numpy().astype(np.int64),
    }
    return pa.table(cols), arrays
