"""The heavy pass over interval_reads and the small tables every usage feature uses.

``cday``: one row per (customer, local day) with sums, maxima and overnight bit masks.
``chour``: one row per (customer, snapshot period, day type, local hour). A day belongs to
period ``p`` = the first snapshot it ends before, so period sums never cross a snapshot.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.pipeline.config import FeatureConfig
from features.pipeline.scan import ScanContext, scan_reads
from features.pipeline.sources import DAY_US

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
    code = {tz: i for i, tz in enumerate(names)}
    return ScanContext(
        meter_ids=[str(x) for x in meters["meter_id"]],
        imin=np.asarray(meters["imin"], np.int64),
        zone=np.array([code[tz] for tz in meters["tz"]], np.int32),
        zone_bounds=[np.array([b for b, _ in zones[tz][1:]], np.int64) for tz in names],
        zone_offs=[np.array([o for _, o in zones[tz]], np.int64) for tz in names],
        snaps_us=np.array(
            [r[0] for r in con.execute("SELECT S FROM snaps ORDER BY si").fetchall()]
        ),
        ev_kw=cfg.ev_kw,
        first_period_days=WINDOW_OF_FIRST_PERIOD_DAYS,
    )


def heavy_passes(
    con: duckdb.DuckDBPyConnection,
    cfg: FeatureConfig,
    zones: dict[str, list[tuple[int, int]]],
    files: list[Path],
    *,
    force_pool: bool = False,
) -> None:
    """Aggregate interval_reads into ``cday`` and ``chour``: one numpy scan, then SQL merges.

    The scan (:mod:`scan`) returns per-file partials keyed by meter ``idx``; a local day can
    span two monthly files, so ``mday`` sums them again (counts decide NULL like SQL's
    ``sum`` of no rows), and the per-customer SQL below is the same as before the scan moved.
    """
    t = time.perf_counter()
    day, hour = scan_reads(files, scan_context(con, cfg, zones), cfg.threads, force_pool=force_pool)
    log.info(
        "scan of %d interval_reads files: %.1f s (%d day, %d hour partial rows)",
        len(files), time.perf_counter() - t, day.num_rows, hour.num_rows,
    )  # fmt: skip
    t = time.perf_counter()
    con.register("scan_hour", hour)
    con.execute(
        """CREATE OR REPLACE TABLE chour AS
        SELECT m.customer_id, h.p, h.weekend, h.hr,
          CASE WHEN sum(h.cnt) > 0 THEN sum(h.kwh) END AS kwh,
          CASE WHEN sum(h.cnt) > 0 THEN sum(h.cnt * m.imin) / 60.0 END AS hours
        FROM scan_hour h JOIN m USING (idx) GROUP BY ALL"""
    )
    con.unregister("scan_hour")
    meters = con.execute("SELECT customer_id, imin FROM m ORDER BY idx").arrow()
    meters = meters.read_all() if hasattr(meters, "read_all") else meters
    snaps = np.array([r[0] for r in con.execute("SELECT S FROM snaps ORDER BY si").fetchall()])
    cday = customer_days(day, meters, snaps, cfg.complete_day_share)
    del day, hour
    con.register("cday_res", cday)
    con.execute("CREATE OR REPLACE TABLE cday AS SELECT * FROM cday_res")
    con.unregister("cday_res")
    log.info("merge of the partials into cday/chour: %.1f s", time.perf_counter() - t)


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
) -> pa.Table:
    """``cday`` from the scan's day partials: merge per (meter, day), then per (customer, day).

    Same definitions as the SQL it replaced: NULL where a sum had no non-null read, kW from
    FLOAT arithmetic, cover = the worst meter's share of intervals, ``night_mask`` = the
    morning bits | the previous day's evening bits (NULL without morning bits), ``p`` =
    the first snapshot at or after the day's UTC end.
    """
    c = {f: day.column(f).to_numpy(zero_copy_only=False) for f in day.column_names}
    kmax = c["kwh_max"]
    order = np.lexsort((c["d"], c["idx"]))
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
    # second level: customers with several meters
    order = np.lexsort((d, ccode))
    st2 = _runs(ccode[order], d[order])

    def red(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
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
    return pa.table(cols)
