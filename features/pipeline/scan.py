"""The heavy pass: one scan of interval_reads, file by file, with pyarrow + numpy.

Why numpy and not SQL here: a SQL engine does this aggregation well on a cluster, but on
2 cores the per-row work (time-zone offset, local day and hour, ~15 filtered sums) over
~170 M reads cost minutes in DuckDB. The files are written sorted by meter then time, so
every per-(meter, local day) aggregate is a segment reduction (``np.add.reduceat``) and the
per-(meter, period, day type, hour) sums are one ``np.bincount`` on an integer key. Each file
is read, reduced and dropped, so memory is bounded by one file per worker; files go to a
process pool (``threads`` workers). Only the small partial tables come back; ``heavy``
merges them in SQL (a local day can span two monthly files) and keeps every feature
definition in SQL.

The semantics copy the former SQL exactly: ``count``/``sum`` ignore null kWh, a filtered
sum with no matching non-null row is NULL (its count is returned so the merge can null it),
the EV bit masks use float32 arithmetic like DuckDB's FLOAT, and days are floor divisions of
local microseconds.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MIN_US = 60_000_000
# below this much parquet a pool costs more (process start-up) than it saves
POOL_MIN_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ScanContext:
    """What a worker needs to reduce one file: meters, zones, snapshots, thresholds."""

    meter_ids: list[str]  # position = idx - 1 (idx as in the SQL table ``m``)
    imin: np.ndarray  # int64 interval minutes per meter
    zone: np.ndarray  # int32 zone code per meter
    zone_bounds: list[np.ndarray]  # per zone: UTC µs where the offset changes
    zone_offs: list[np.ndarray]  # per zone: offsets (µs), one more than bounds
    snaps_us: np.ndarray  # sorted snapshot instants (µs)
    ev_kw: float
    first_period_days: int
    win_snaps_us: np.ndarray  # snapshots that get a ``windows`` row (all, or the last)
    window_days: int


DAY_SCHEMA = pa.schema(
    [("idx", pa.int64()), ("d", pa.int32()), ("n", pa.int64()), ("kwh", pa.float64()),
     ("kwh_max", pa.float32()), ("n_exp", pa.int64()), ("kexp", pa.float64()),
     ("off_min", pa.int64()), ("n_night", pa.int64()), ("knight", pa.float64()),
     ("n_peak", pa.int64()), ("kpeak", pa.float64()), ("n_eve", pa.int64()),
     ("keve", pa.float64()), ("me", pa.uint64()), ("mm", pa.uint64())]
)  # fmt: skip
HOUR_SCHEMA = pa.schema(
    [("idx", pa.int64()), ("p", pa.int32()), ("weekend", pa.bool_()), ("hr", pa.int32()),
     ("cnt", pa.int64()), ("kwh", pa.float64())]
)  # fmt: skip

WIN_DTYPES = {"pos": np.int64, "kwh": np.float32}

_CTX: ScanContext | None = None
_INDEX: dict[str, int] | None = None


def _init(ctx: ScanContext) -> None:
    """Pool initializer: keep the context and a meter-id lookup in the worker."""
    global _CTX, _INDEX
    _CTX = ctx
    _INDEX = {m: i for i, m in enumerate(ctx.meter_ids)}


def _meter_index(col: pa.ChunkedArray, index: dict[str, int]) -> np.ndarray:
    """Meter position (0-based, -1: not an electric meter) per row; maps dictionaries only.

    A file holds one chunk of meters, so its dictionary has a few hundred entries: they are
    looked up (a dict, ~µs) and the per-row codes gathered.
    """
    out = []
    for chunk in col.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        names = chunk.dictionary.cast(pa.string()).to_pylist()
        lut = np.array([index.get(m, -1) for m in names] + [-1], np.int64)
        codes = chunk.indices.fill_null(len(names)).to_numpy(zero_copy_only=False)
        out.append(lut[codes])
    return np.concatenate(out) if out else np.empty(0, np.int64)


def _floats(t: pa.Table, name: str) -> np.ndarray:
    """A float column as float32 with NaN for null (all NaN when the file lacks it)."""
    if name not in t.column_names:
        return np.full(t.num_rows, np.nan, np.float32)
    return t.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)


def _offsets(ctx: ScanContext, gi: np.ndarray, us: np.ndarray) -> np.ndarray:
    """UTC offset (µs) of every read: a per-meter gather, plus a searchsorted for DST zones."""
    nseg = np.array([len(o) for o in ctx.zone_offs])
    fixed = np.array([o[0] if len(o) == 1 else 0 for o in ctx.zone_offs], np.int64)
    off = fixed[ctx.zone][gi]
    for z in np.flatnonzero(nseg > 1):
        sel = np.flatnonzero(ctx.zone[gi] == z)
        if len(sel):
            off[sel] = ctx.zone_offs[z][np.searchsorted(ctx.zone_bounds[z], us[sel], "right")]
    return off


def _read(path: str, index: dict[str, int]) -> tuple[np.ndarray, ...]:
    """Meter position, UTC µs, kWh and export kWh (NaN = null) of one file's usable rows."""
    pf = pq.ParquetFile(path)  # the plain file reader: ~2x less overhead than read_table
    cols = [c for c in ("meter_id", "ts", "kwh", "kwh_export") if c in pf.schema_arrow.names]
    t = pf.read(columns=cols, use_threads=False)
    gi = _meter_index(t.column("meter_id"), index)
    ts = t.column("ts")
    if pa.types.is_timestamp(ts.type) and ts.type.unit != "us":
        ts = pc.cast(ts, pa.timestamp("us", tz=ts.type.tz))
    keep = gi >= 0
    if ts.null_count:
        keep &= ts.is_valid().to_numpy(zero_copy_only=False)
    us = ts.cast(pa.int64()).fill_null(0).to_numpy()
    kwh, kexp = _floats(t, "kwh"), _floats(t, "kwh_export")
    if not keep.all():
        return gi[keep], us[keep], kwh[keep], kexp[keep]
    return gi, us, kwh, kexp


def reduce_file(path: str) -> dict[str, np.ndarray]:
    """Partial day and hour aggregates of one interval_reads file (see module docstring).

    Rows are cut into runs of equal (meter, local day, offset): in a file sorted by meter
    then time each run is one meter-day (two on a DST change day), so day aggregates are
    ``reduceat`` over the runs and a run × 24-hour matrix (one ``bincount``) gives every
    hour-filtered sum. Unsorted files only produce more (still correct) partial rows; the
    SQL merge sums them.
    """
    ctx, index = _CTX, _INDEX
    assert ctx is not None and index is not None, "reduce_file needs _init first"
    gi, us, kwh, kexp = _read(path, index)
    if len(gi) == 0:
        return {}
    off = _offsets(ctx, gi, us)
    lu = us + off
    habs = lu // HOUR_US
    d = habs // 24
    hr = habs - d * 24
    brk = (gi[1:] != gi[:-1]) | (d[1:] != d[:-1]) | (off[1:] != off[:-1])
    starts = np.concatenate([[0], np.flatnonzero(brk) + 1])
    if len(starts) > len(gi) // 4:  # far from sorted: sort once rather than emit row-sized runs
        order = np.lexsort((off, d, gi))
        gi, us, kwh, kexp, off, d, lu, hr = (a[order] for a in (gi, us, kwh, kexp, off, d, lu, hr))
        brk = (gi[1:] != gi[:-1]) | (d[1:] != d[:-1]) | (off[1:] != off[:-1])
        starts = np.concatenate([[0], np.flatnonzero(brk) + 1])
    nrun = len(starts)
    run = np.zeros(len(gi), np.int64)
    run[starts[1:]] = 1
    np.cumsum(run, out=run)
    valid = ~np.isnan(kwh)
    kz = np.where(valid, kwh, np.float32(0)).astype(np.float64)
    hk = run * 24 + hr
    hsum = np.bincount(hk, weights=kz, minlength=nrun * 24).reshape(nrun, 24)
    hcnt = np.bincount(hk, weights=valid, minlength=nrun * 24).reshape(nrun, 24)
    hrows = np.bincount(hk, minlength=nrun * 24).reshape(nrun, 24)
    r_gi, r_d, r_off = gi[starts], d[starts], off[starts]
    weekday = ~np.isin((r_d + 4) % 7, (0, 6))
    # EV bit masks: only the few reads above ev_kw overnight need their bit
    imin_m = ctx.imin
    night = np.flatnonzero((hr >= 22) | (hr < 6))
    kw = kwh[night] * np.float32(60.0) / imin_m[gi[night]].astype(np.float32)  # DuckDB FLOAT
    hot = night[kw > np.float32(ctx.ev_kw)]
    me = np.zeros(nrun, np.uint64)
    mm = np.zeros(nrun, np.uint64)
    if len(hot):
        mi = (lu[hot] - d[hot] * DAY_US) // MIN_US
        im, eve_ = imin_m[gi[hot]], hr[hot] >= 22
        shift = np.minimum(63, np.where(eve_, (mi - 1320) // im, (mi + 120) // im))
        bits = np.left_shift(np.uint64(1), shift.astype(np.uint64))
        np.bitwise_or.at(me, run[hot[eve_]], bits[eve_])
        np.bitwise_or.at(mm, run[hot[~eve_]], bits[~eve_])
    evalid = ~np.isnan(kexp)

    def cols(m: np.ndarray, a: int, b: int) -> np.ndarray:
        return m[:, a:b].sum(axis=1)

    day = {
        "idx": r_gi + 1,
        "d": r_d.astype(np.int32),
        "n": cols(hcnt, 0, 24).astype(np.int64),
        "kwh": cols(hsum, 0, 24),
        "kwh_max": np.fmax.reduceat(kwh, starts),
        "n_exp": np.add.reduceat(evalid.astype(np.int64), starts),
        "kexp": np.add.reduceat(np.where(evalid, kexp, np.float32(0)).astype(np.float64), starts),
        "off_min": r_off,
        "n_night": cols(hcnt, 1, 5).astype(np.int64),
        "knight": cols(hsum, 1, 5),
        "n_peak": np.where(weekday, cols(hcnt, 16, 21), 0).astype(np.int64),
        "kpeak": np.where(weekday, cols(hsum, 16, 21), 0.0),
        "n_eve": cols(hcnt, 17, 20).astype(np.int64),
        "keve": cols(hsum, 17, 20),
        "me": me,
        "mm": mm,
    }
    # hourly sums per (meter, snapshot period, day type, hour); the period is the first
    # snapshot the day ends before (constant within a run: one offset per run)
    snaps = ctx.snaps_us
    de = (r_d + 1) * DAY_US - r_off
    sel = np.flatnonzero((de > snaps[0] - ctx.first_period_days * DAY_US) & (de <= snaps[-1]))
    p = np.searchsorted(snaps, de[sel], side="left")
    key = (r_gi[sel] * len(snaps) + p) * 2 + ~weekday[sel]
    gkey, inv = np.unique(key, return_inverse=True)
    ng = len(gkey)
    gh = (inv[:, None] * 24 + np.arange(24)).ravel()
    g_sum = np.bincount(gh, weights=hsum[sel].ravel(), minlength=ng * 24)
    g_cnt = np.bincount(gh, weights=hcnt[sel].ravel(), minlength=ng * 24)
    g_rows = np.bincount(gh, weights=hrows[sel].ravel(), minlength=ng * 24)
    nz = np.flatnonzero(g_rows)
    k = gkey[nz // 24]
    hour = {
        "idx": k // 2 // len(snaps) + 1,
        "p": (k // 2 % len(snaps) + 1).astype(np.int32),
        "weekend": (k % 2).astype(bool),
        "hr": (nz % 24).astype(np.int32),
        "cnt": g_cnt[nz].astype(np.int64),
        "kwh": g_sum[nz],
    }
    win = _window_reads(ctx, gi, us, kwh, valid)
    return {
        **{f"day.{k}": v for k, v in day.items()},
        **{f"hour.{k}": v for k, v in hour.items()},
        **{f"win.{k}": v for k, v in win.items()},
    }


def _window_reads(
    ctx: ScanContext, gi: np.ndarray, us: np.ndarray, kwh: np.ndarray, valid: np.ndarray
) -> dict[str, np.ndarray]:
    """Non-null reads in [S - window_days, S) of each windows snapshot ``k``, as positions in
    the flat (snapshot, meter, slot) value array (8 bytes a value crosses the process pipe)."""
    length = ctx.window_days * 1440 // ctx.imin
    offsets = np.concatenate([[0], np.cumsum(length)])
    total = int(offsets[-1])
    parts = []
    lo_us, hi_us = int(us.min()), int(us.max())
    for k, s_us in enumerate(ctx.win_snaps_us):
        lo = int(s_us) - ctx.window_days * DAY_US
        if hi_us < lo or lo_us >= s_us:
            continue
        sel = np.flatnonzero((us >= lo) & (us < s_us) & valid)
        m = gi[sel]
        j = (us[sel] - lo) // (ctx.imin[m] * MIN_US)
        good = j < length[m]
        parts.append((k * total + offsets[m[good]] + j[good], kwh[sel[good]]))
    pos_type = np.int32 if len(ctx.win_snaps_us) * total < 2**31 else np.int64
    return {
        "pos": np.concatenate([p[0] for p in parts]).astype(pos_type)
        if parts
        else np.empty(0, pos_type),
        "kwh": np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.float32),
    }


def _can_fork() -> bool:
    """Whether this platform has the fork start method (Linux/macOS)."""
    return "fork" in mp.get_all_start_methods()


def reads_files(reads_dir: Path) -> list[Path]:
    """Every parquet file of interval_reads (month partitions × chunks), in a stable order."""
    return sorted(reads_dir.rglob("*.parquet"))


def scan_reads(
    files: list[Path], ctx: ScanContext, workers: int, *, force_pool: bool = False
) -> tuple[pa.Table, pa.Table, dict[str, np.ndarray]]:
    """Reduce every file (a process pool of ``workers`` for big inputs) -> day, hour partials."""
    paths = [str(f) for f in files]
    big = sum(f.stat().st_size for f in files) >= POOL_MIN_BYTES
    _init(ctx)
    if workers > 1 and len(paths) > 1 and (big or force_pool) and _can_fork():
        # processes (the reductions hold the GIL: threads gave no speed-up); fork, so the
        # context is inherited rather than pickled and no __main__ is re-imported. Workers
        # only use numpy/pyarrow (fork-safe), never the parent's DuckDB connection.
        with mp.get_context("fork").Pool(workers) as pool:
            parts = list(pool.imap_unordered(reduce_file, paths, chunksize=4))
    else:
        parts = [reduce_file(p) for p in paths]
    parts = [p for p in parts if p]
    win = {
        k: np.concatenate([p[f"win.{k}"] for p in parts]) if parts else np.empty(0, t)
        for k, t in WIN_DTYPES.items()
    }
    return _concat(parts, "day.", DAY_SCHEMA), _concat(parts, "hour.", HOUR_SCHEMA), win


def _concat(parts: list[dict[str, Any]], prefix: str, schema: pa.Schema) -> pa.Table:
    """Stack one kind of partial (``day.``/``hour.``) into an arrow table, NaN max -> null."""
    cols = [
        pa.array(
            np.concatenate([p[prefix + f.name] for p in parts]) if parts else [],
            f.type,
            from_pandas=f.name == "kwh_max",
        )
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)
