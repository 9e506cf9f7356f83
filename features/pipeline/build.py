"""Build every feature group of a dataset: canonical tables -> one parquet file per group.

One numpy scan of interval_reads, file by file (:mod:`scan`, :mod:`heavy`), into per-day
arrays and small window tables (:mod:`windowstats`), then one DuckDB SQL query per group
(:mod:`groups_sql`). Rows exist for each (customer, snapshot) with the customer active
(moved in before, not moved out on or before the snapshot) and, where the customer has
electric reads, after the first complete day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

from features.pipeline import groups_sql as gsql
from features.pipeline.config import FeatureConfig, load_feature_config
from features.pipeline.heavy import build_meter_table, heavy_passes
from features.pipeline.registry import GROUPS
from features.pipeline.scan import reads_files
from features.pipeline.sources import (
    DAY_US,
    default_snapshots,
    offset_sql,
    register_sources,
    to_us,
    zone_segments,
)
from features.pipeline.windowstats import degree_day_sums, window_stats
from wattwise.errors import DataError

log = logging.getLogger(__name__)
READS_GROUPS = {"usage", "load_shape", "peer", "rate", "windows"}


@dataclass
class FeatureBuildSummary:
    """What a build wrote: rows per group, skipped groups and timings."""

    out_dir: Path
    snapshots: list[dt.date]
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    group_seconds: dict[str, float] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            f"features written to {self.out_dir} in {self.seconds:.1f} s "
            f"({len(self.snapshots)} snapshots {self.snapshots[0]} .. {self.snapshots[-1]})"
        ]
        for g, n in self.rows.items():
            lines.append(f"  {g:<12} {n:>10,} rows  {self.group_seconds.get(g, 0):6.1f} s")
        for g, why in self.skipped.items():
            lines.append(f"  {g:<12} skipped: {why}")
        return "\n".join(lines)


def _arrow(rel: duckdb.DuckDBPyConnection) -> pa.Table:
    res = rel.arrow()
    return res.read_all() if hasattr(res, "read_all") else res


def _write(con: duckdb.DuckDBPyConnection, group: str, key: str, out_dir: Path) -> int:
    """Join a group's features onto its rows, cast types and write ``<group>.parquet``."""
    spec = GROUPS[group]
    cols = ", ".join(f"g.{f}" for f in spec.feature_names)
    rows = "base" if key == "customer_id" else "mbase"
    tbl = _arrow(
        con.execute(
            f"""SELECT b.{key}, b.ts AS event_timestamp, b.ts AS created_timestamp, {cols}
            FROM {rows} b LEFT JOIN g_{group} g USING ({key}, si) ORDER BY b.si, b.{key}"""
        )
    )
    fields = []
    for f in tbl.schema:
        t = f.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        elif pa.types.is_decimal(t) or pa.types.is_float32(t) and f.name != "win_kwh":
            t = pa.float64()
        elif pa.types.is_integer(t):
            t = pa.int64()
        fields.append(pa.field(f.name, t))
    tbl = tbl.cast(pa.schema(fields))
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, out_dir / f"{group}.parquet", compression="zstd")
    return tbl.num_rows


def _load_shape(con: duckdb.DuckDBPyConnection, cfg: FeatureConfig, fit_end: dt.date) -> None:
    """Shares in SQL, k-means (seeded) fit on snapshots before ``fit_end``, predicted for all."""
    shares = _arrow(
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE sh AS {gsql.shape_sql()}; SELECT * FROM sh ORDER BY si, customer_id"
        )
    )
    hcols = [f"shape_h{h:02d}" for h in range(24)]
    x = np.column_stack([shares.column(c).to_numpy(zero_copy_only=False) for c in hcols])
    x = np.nan_to_num(x.astype(np.float64), nan=np.nan)
    ok = np.isfinite(x).all(axis=1)
    si = shares.column("si").to_numpy()
    fit_si = {r[0] for r in con.execute("SELECT si FROM snaps WHERE sd < ?", [fit_end]).fetchall()}
    fit_rows = ok & np.isin(si, list(fit_si))
    seg = np.full(len(x), -1, dtype=np.int64)
    dist = np.full(len(x), np.nan)
    k = min(cfg.kmeans_k, int(fit_rows.sum()))
    if k >= 1:
        km = KMeans(n_clusters=k, random_state=cfg.seed, n_init=4).fit(x[fit_rows])
        seg[ok] = km.predict(x[ok])
        dist[ok] = np.linalg.norm(x[ok] - km.cluster_centers_[seg[ok]], axis=1)
    else:
        log.warning("load_shape: no complete profiles before %s, segments left null", fit_end)
    seg_arr = pa.array(seg, mask=seg < 0)
    res = pa.table(
        {
            "customer_id": shares.column("customer_id"),
            "si": shares.column("si"),
            "shape_segment": seg_arr,
            "shape_distance": pa.array(dist, mask=~np.isfinite(dist)),
        }
    )
    for c in hcols:
        res = res.append_column(c, shares.column(c))
    con.register("shape_res", res)
    con.execute("CREATE OR REPLACE TEMP TABLE g_load_shape AS SELECT * FROM shape_res")
    con.unregister("shape_res")


def _ddwin(
    con: duckdb.DuckDBPyConnection,
    cfg: FeatureConfig,
    days: dict[str, np.ndarray],
    customers: pa.Array,
    ns: int,
) -> pa.Table:
    """Degree-day sums per (customer, snapshot, balance pair): regions as integer codes."""
    regions = con.execute(
        "SELECT DISTINCT region FROM cust WHERE region IS NOT NULL ORDER BY 1"
    ).fetchnumpy()["region"]
    ridx = pd.Index(np.asarray(regions).astype(str))
    cr = _arrow(con.execute("SELECT customer_id, region FROM cust"))
    code = pd.Index(customers.to_pandas()).get_indexer(cr.column("customer_id").to_pandas())
    cust_region = np.full(len(customers), -1, np.int64)
    reg = ridx.get_indexer(cr.column("region").to_pandas().astype(str))
    have = (code >= 0) & cr.column("region").is_valid().to_numpy(zero_copy_only=False)
    cust_region[code[have]] = reg[have]
    wd = _arrow(con.execute("SELECT region, d, t FROM wday"))
    rc = ridx.get_indexer(wd.column("region").to_pandas().astype(str))
    keep = rc >= 0
    wday = pa.table(
        {
            "rc": pa.array(rc[keep]),
            "d": pa.array(wd.column("d").to_numpy()[keep]),
            "t": pa.array(wd.column("t").to_numpy(zero_copy_only=False)[keep]),
        }
    )
    pairs = [(h, c) for h in cfg.heating_balance_c for c in cfg.cooling_balance_c if h <= c]
    return degree_day_sums(days, cust_region, wday, customers, ns, pairs, cfg.min_fit_days)


def _windows(
    con: duckdb.DuckDBPyConnection, cfg: FeatureConfig, win: dict[str, np.ndarray], out_dir: Path
) -> int:
    """Last ``window_days`` of reads per meter at fixed length; numpy scatter, NaN = missing.

    ``win`` holds the scan's non-null reads inside each window (``pos`` in the flat
    snapshot × meter × slot array, kWh), so no second pass over interval_reads is needed. The
    file is assembled in arrow (a gather of each row's slice): list columns through a SQL
    join cost seconds for nothing.
    """
    snaps = con.execute("SELECT si FROM snaps ORDER BY si").fetchall()
    if not cfg.windows_all_snapshots:
        snaps = snaps[-1:]
    keep = "" if cfg.windows_all_snapshots else "WHERE b.si = (SELECT max(si) FROM snaps)"
    rows = _arrow(
        con.execute(
            f"""SELECT m.meter_id, b.si, b.ts, m.idx - 1 AS i FROM base b
            JOIN m USING (customer_id) {keep} ORDER BY b.si, m.meter_id"""
        )
    )
    imin = _arrow(con.execute("SELECT imin FROM m ORDER BY idx")).column("imin").to_numpy()
    imin = imin.astype(np.int64)
    length = cfg.window_days * 1440 // imin
    offsets = np.concatenate([[0], np.cumsum(length)])
    total = int(offsets[-1])
    kmap = np.full(max(si for (si,) in snaps) + 1, -1, np.int64)
    kmap[[si for (si,) in snaps]] = np.arange(len(snaps))
    vals = np.full(len(snaps) * total, np.nan, dtype=np.float32)
    vals[win["pos"]] = win["kwh"]
    r_i = rows.column("i").to_numpy().astype(np.int64)
    r_k = kmap[rows.column("si").to_numpy()]
    lens = length[r_i]
    loff = np.concatenate([[0], np.cumsum(lens)])
    flat = vals[np.repeat(r_k * total + offsets[r_i] - loff[:-1], lens) + np.arange(loff[-1])]
    missing = (
        np.add.reduceat(np.isnan(flat).astype(np.int64), loff[:-1])
        if len(r_i)
        else np.empty(0, np.int64)
    )
    ts = rows.column("ts").cast(pa.timestamp("us", tz="UTC"))
    tbl = pa.table(
        {
            "meter_id": rows.column("meter_id").cast(pa.string()),
            "event_timestamp": ts,
            "created_timestamp": ts,
            "win_kwh": pa.ListArray.from_arrays(
                pa.array(loff, pa.int32()),
                pa.array(flat),
                type=pa.list_(pa.field("element", pa.float32())),
            ),
            "win_interval_minutes": pa.array(imin[r_i]),
            "win_missing": pa.array(missing, pa.int64()),
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, out_dir / "windows.parquet", compression="zstd")
    return tbl.num_rows


def build_features(
    dataset_dir: Path,
    out_dir: Path | None = None,
    *,
    snapshots: list[dt.date] | None = None,
    segment_fit_end: dt.date | None = None,
    groups: list[str] | None = None,
    config: FeatureConfig | None = None,
) -> FeatureBuildSummary:
    """Compute the feature groups of ``dataset_dir`` and write ``out_dir/<group>.parquet``."""
    t0 = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    out_dir = Path(out_dir) if out_dir else dataset_dir / "features"
    cfg = config or load_feature_config()
    wanted = list(groups or GROUPS)
    unknown = set(wanted) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown feature groups: {sorted(unknown)}")
    con = duckdb.connect(
        config={
            "threads": cfg.threads,
            "memory_limit": cfg.memory_limit,
            "preserve_insertion_order": False,
        }
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        with contextlib.suppress(duckdb.Error):  # in Jupyter DuckDB wants ipywidgets for this
            con.execute("SET enable_progress_bar = false")
        present = register_sources(con, dataset_dir)
        if "customers" not in present:
            raise DataError(f"{dataset_dir}: no customers table, nothing to key features on")
        has_reads = {"interval_reads", "meters"} <= present
        if has_reads:
            row = con.execute(
                "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM src_interval_reads"
            ).fetchone()
            first_us, last_us = row if row else (None, None)
        else:
            first_us = last_us = None
        if first_us is None:
            has_reads = False
            span = con.execute(
                "SELECT min(bill_month), max(bill_month) FROM src_bills"
                if "bills" in present
                else "SELECT min(move_in), current_date FROM src_customers"
            ).fetchone()
            first, last = span if span else (None, None)
        else:
            first = dt.date(1970, 1, 1) + dt.timedelta(microseconds=first_us)
            last = dt.date(1970, 1, 1) + dt.timedelta(microseconds=last_us)
        snaps = sorted(snapshots or default_snapshots(first, last))
        summary = FeatureBuildSummary(out_dir, snaps)
        con.execute("CREATE TABLE snaps (si INTEGER, S BIGINT, sd DATE, ts TIMESTAMPTZ)")
        con.executemany(
            "INSERT INTO snaps VALUES (?, ?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ)",
            [(i + 1, to_us(d), d, to_us(d)) for i, d in enumerate(snaps)],
        )
        con.execute("CREATE TABLE cust AS SELECT * FROM src_customers")
        if has_reads:
            build_meter_table(con)
            tzs = [r[0] for r in con.execute("SELECT DISTINCT tz FROM m").fetchall()]
            if "weather" in present:
                con.execute("""CREATE TEMP TABLE rtz AS SELECT c.region, any_value(m.tz) AS tz
                    FROM m JOIN cust c USING (customer_id) GROUP BY 1""")
            zones = {tz: zone_segments(tz, first_us - DAY_US, last_us + DAY_US) for tz in tzs}
            t = time.perf_counter()
            days, day_customers, win = heavy_passes(
                con, cfg, zones, reads_files(dataset_dir / "interval_reads")
            )
            log.info("heavy pass over interval_reads: %.1f s", time.perf_counter() - t)
            if "weather" in present:
                con.execute(f"""CREATE TEMP TABLE wday AS
                    SELECT w.region, ((epoch_us(w.ts) + {offset_sql(zones, "epoch_us(w.ts)", "r.tz")})
                      // {DAY_US})::INTEGER AS d, avg(temperature_c) AS t
                    FROM src_weather w JOIN rtz r USING (region) GROUP BY ALL HAVING count(*) >= 20""")
            else:
                con.execute("CREATE TEMP TABLE wday (region VARCHAR, d INTEGER, t DOUBLE)")
            start_join = "LEFT JOIN cstart cs USING (customer_id)"
            start_filter = "AND (cs.customer_id IS NULL OR cs.first_end <= s.S)"
        else:
            start_join = start_filter = ""
        con.execute(f"""CREATE TEMP TABLE base AS SELECT cu.customer_id, s.si, s.ts, s.sd, s.S
            FROM cust cu {start_join} CROSS JOIN snaps s
            WHERE (cu.move_out IS NULL OR s.sd < cu.move_out)
              AND (cu.move_in IS NULL OR cu.move_in < s.sd) {start_filter}""")
        # default: fit segments on the first half of the snapshots
        fit_end = segment_fit_end or (
            snaps[len(snaps) // 2] if len(snaps) > 1 else snaps[0] + dt.timedelta(days=1)
        )
        order = [g for g in GROUPS if g in wanted or (g == "usage" and "peer" in wanted)]
        for group in order:
            tg = time.perf_counter()
            if group in READS_GROUPS and not has_reads:
                summary.skipped[group] = "no interval_reads/meters in this source"
                log.info("skipping %s: %s", group, summary.skipped[group])
                continue
            if group == "rate" and "tariff_rates" not in present:
                summary.skipped[group] = "no tariff_rates in this source"
                continue
            if group == "billing" and "bills" not in present:
                summary.skipped[group] = "no bills in this source"
                continue
            if group == "usage":
                tu = time.perf_counter()
                con.register("ddwin_res", _ddwin(con, cfg, days, day_customers, len(snaps)))
                con.execute("CREATE OR REPLACE TEMP TABLE ddwin AS SELECT * FROM ddwin_res")
                con.unregister("ddwin_res")
                log.info("usage: degree-day sums %.1f s", time.perf_counter() - tu)
                tu = time.perf_counter()
                con.execute(f"CREATE OR REPLACE TEMP TABLE ddfit AS {gsql.ddfit_sql(cfg)}")
                log.info("usage: degree-day fits (SQL) %.1f s", time.perf_counter() - tu)
                tu = time.perf_counter()
                snaps_us = np.array(
                    [r[0] for r in con.execute("SELECT S FROM snaps ORDER BY si").fetchall()]
                )
                con.register("uwin_res", window_stats(days, day_customers, snaps_us, cfg.anomaly_z))
                con.execute("CREATE OR REPLACE TEMP TABLE uwin AS SELECT * FROM uwin_res")
                con.unregister("uwin_res")
                log.info("usage: window sums %.1f s", time.perf_counter() - tu)
                con.execute(f"CREATE OR REPLACE TEMP TABLE g_usage AS {gsql.usage_sql(cfg)}")
            elif group == "load_shape":
                _load_shape(con, cfg, fit_end)
            elif group == "peer":
                con.execute(f"CREATE OR REPLACE TEMP TABLE g_peer AS {gsql.peer_sql(cfg)}")
            elif group == "rate":
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE g_rate AS {gsql.rate_sql('bills' in present)}"
                )
            elif group == "billing":
                sql = gsql.billing_sql("payments" in present)
                con.execute(f"CREATE OR REPLACE TEMP TABLE g_billing AS {sql}")
            elif group == "engagement":
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE g_engagement AS {gsql.engagement_sql(present)}"
                )
            elif group == "programs":
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE g_programs AS {gsql.programs_sql(present)}"
                )
            elif group == "premise":
                con.execute(f"CREATE OR REPLACE TEMP TABLE g_premise AS {gsql.premise_sql()}")
            elif group == "windows":
                summary.rows[group] = _windows(con, cfg, win, out_dir)
            if group in wanted and group != "windows":
                key = GROUPS[group].entity
                summary.rows[group] = _write(con, group, key, out_dir)
            summary.group_seconds[group] = time.perf_counter() - tg
            log.info("%s: %.1f s", group, summary.group_seconds[group])
    finally:
        con.close()
    summary.seconds = time.perf_counter() - t0
    return summary
