"""Build every feature group of a dataset: canonical tables -> one parquet file per group.

Runs on DuckDB: two heavy passes over interval_reads into small per-day and per-period
tables (:mod:`heavy`), then one SQL query per group (:mod:`groups_sql`). Rows exist for each
(customer, snapshot) with the customer active (moved in before, not moved out on or before
the snapshot) and, where the customer has electric reads, after the first complete day.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
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


def _windows(con: duckdb.DuckDBPyConnection, cfg: FeatureConfig) -> None:
    """Last ``window_days`` of reads per meter at fixed length; numpy scatter, NaN = missing."""
    snaps = con.execute("SELECT si, S FROM snaps ORDER BY si").fetchall()
    if not cfg.windows_all_snapshots:
        snaps = snaps[-1:]
    meters = _arrow(con.execute("SELECT meter_id, imin FROM m ORDER BY idx"))
    imin = meters.column("imin").to_numpy().astype(np.int64)
    length = cfg.window_days * 1440 // imin
    offsets = np.concatenate([[0], np.cumsum(length)])
    out = []
    for si, s_us in snaps:
        lo = s_us - cfg.window_days * DAY_US
        r = _arrow(
            con.execute(
                f"""SELECT m.idx - 1 AS i, ((epoch_us(r.ts) - {lo}) // (m.imin * 60000000))::BIGINT AS j,
                r.kwh FROM src_interval_reads r JOIN m USING (meter_id)
                WHERE r.ts >= make_timestamp({lo})::TIMESTAMPTZ AND r.ts < make_timestamp({s_us})::TIMESTAMPTZ
                  AND r.kwh IS NOT NULL"""
            )
        )
        vals = np.full(offsets[-1], np.nan, dtype=np.float32)
        i = r.column("i").to_numpy()
        j = r.column("j").to_numpy()
        good = j < length[i]
        vals[offsets[i[good]] + j[good]] = r.column("kwh").to_numpy()[good]
        missing = (
            np.add.reduceat(np.isnan(vals).astype(np.int64), offsets[:-1]) if len(imin) else []
        )
        out.append(
            pa.table(
                {
                    "meter_id": meters.column("meter_id"),
                    "si": pa.array(np.full(len(imin), si, dtype=np.int32)),
                    "win_kwh": pa.ListArray.from_arrays(
                        pa.array(offsets, pa.int32()), pa.array(vals)
                    ),
                    "win_interval_minutes": pa.array(imin),
                    "win_missing": pa.array(missing, pa.int64()),
                }
            )
        )
    con.register("win_res", pa.concat_tables(out))
    con.execute("CREATE OR REPLACE TEMP TABLE g_windows AS SELECT * FROM win_res")
    con.unregister("win_res")
    keep = "" if cfg.windows_all_snapshots else "WHERE b.si = (SELECT max(si) FROM snaps)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE mbase AS SELECT m.meter_id, b.si, b.ts FROM base b
        JOIN m USING (customer_id) {keep}"""
    )


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
        con.execute("SET enable_progress_bar = false")
        present = register_sources(con, dataset_dir)
        if "customers" not in present:
            raise DataError(f"{dataset_dir}: no customers table, nothing to key features on")
        has_reads = {"interval_reads", "meters"} <= present
        if has_reads:
            first_us, last_us = con.execute(
                "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM src_interval_reads"
            ).fetchone()
        else:
            first_us = last_us = None
        if first_us is None:
            has_reads = False
            span = con.execute(
                "SELECT min(bill_month), max(bill_month) FROM src_bills"
                if "bills" in present
                else "SELECT min(move_in), current_date FROM src_customers"
            ).fetchone()
            first, last = span
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
            heavy_passes(con, cfg, zones, reads_files(dataset_dir / "interval_reads"))
            log.info("heavy pass over interval_reads: %.1f s", time.perf_counter() - t)
            if "weather" in present:
                con.execute(f"""CREATE TEMP TABLE wday AS
                    SELECT w.region, ((epoch_us(w.ts) + {offset_sql(zones, "epoch_us(w.ts)", "r.tz")})
                      // {DAY_US})::INTEGER AS d, avg(temperature_c) AS t
                    FROM src_weather w JOIN rtz r USING (region) GROUP BY ALL HAVING count(*) >= 20""")
            else:
                con.execute("CREATE TEMP TABLE wday (region VARCHAR, d INTEGER, t DOUBLE)")
            start_filter = """AND (NOT EXISTS (SELECT 1 FROM cday c WHERE c.customer_id = cu.customer_id)
                OR (SELECT min(day_end) FROM cday c WHERE c.customer_id = cu.customer_id
                    AND c.complete) <= s.S)"""
        else:
            start_filter = ""
        con.execute(f"""CREATE TEMP TABLE base AS SELECT cu.customer_id, s.si, s.ts, s.sd, s.S
            FROM cust cu CROSS JOIN snaps s
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
                con.execute(f"CREATE OR REPLACE TEMP TABLE ddfit AS {gsql.ddfit_sql(cfg)}")
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
            elif group == "windows":
                _windows(con, cfg)
            if group in wanted:
                key = GROUPS[group].entity
                summary.rows[group] = _write(con, group, key, out_dir)
            summary.group_seconds[group] = time.perf_counter() - tg
            log.info("%s: %.1f s", group, summary.group_seconds[group])
    finally:
        con.close()
    summary.seconds = time.perf_counter() - t0
    return summary
