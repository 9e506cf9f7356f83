"""Settlement: measured performance of an event, stored, and the past-performance features.

``settle_event`` computes every participant's baseline (the configured settlement method),
reduction and payment, writes ``<dataset>/dr/settlements/<event_id>.parquet`` and rebuilds
``<dataset>/features/dr_performance.parquet`` from all settlements, which Feast serves in
``dr_response_v1``. A settlement becomes known ``lag_hours`` after the event ends (meter
data arrive the next day); that moment is both its event and created timestamp, so a
point-in-time join never sees an event's own performance at its notification.

Feature rows: at each settlement time and on the first of every month, the cumulative
statistics of each customer's called events settled by then (an ASOF join in DuckDB), so a
value is never older than the view's TTL between seasons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.dr.config import DRConfig
from features.dr.events import read_events
from features.dr.performance import DidResult, did, measure_events, performance_frame
from features.pipeline.registry import DR_PERFORMANCE
from wattwise.errors import DataError

log = logging.getLogger(__name__)


def settlements_dir(dataset_dir: Path) -> Path:
    return dataset_dir / "dr" / "settlements"


@dataclass
class Settlement:
    event_id: str
    rows: pd.DataFrame
    did: DidResult | None

    def render(self) -> str:
        c = self.rows[self.rows.called]
        lines = [
            f"{self.event_id}: {len(c):,} called, {len(self.rows) - len(c):,} control "
            f"(baseline {self.rows.method.iloc[0] if len(self.rows) else '-'})",
            f"  measured reduction of called customers: {c.reduction_kwh.sum():,.1f} kWh, "
            f"{c.reduction_kw.mean():.3f} kW mean; payments {c.payment.sum():,.2f}",
        ]
        if self.did is not None:
            lines.append(f"  difference in differences: {self.did.render()}")
        return "\n".join(lines)


def settle_events(
    dataset_dir: Path, cfg: DRConfig, event_ids: list[str] | None = None
) -> list[Settlement]:
    """Settle events (default: every DR event), store them and rebuild the feature table."""
    method = cfg.settlement.method
    events = read_events(dataset_dir)
    if events.empty:
        raise DataError(f"{dataset_dir.name} has no DR events to settle")
    ms = measure_events(dataset_dir, cfg, event_ids, methods=(method,))
    pf = performance_frame(ms)
    ev = events.set_index("event_id")
    pf["event_start"] = pf.event_id.map(ev.start)
    pf["event_end"] = pf.event_id.map(ev["end"])
    pf["settled_at"] = pf.event_end + pd.Timedelta(hours=cfg.settlement.lag_hours)
    pf["incentive_per_kwh"] = pf.event_id.map(ev.incentive_per_kwh).astype(float)
    pf["payment"] = np.where(
        pf.called, pf.incentive_per_kwh * pf.reduction_kwh.clip(lower=0).fillna(0), 0.0
    )
    out_dir = settlements_dir(dataset_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for eid, rows in pf.groupby("event_id", sort=False):
        rows = rows.reset_index(drop=True)
        rows.to_parquet(out_dir / f"{eid}.parquet", index=False)
        both = rows.called.any() and (~rows.called).any()
        d = (
            did(rows, n_boot=cfg.settlement.bootstrap, seed=cfg.settlement.seed)
            if both and rows.reduction_kw.notna().sum() > 2
            else None
        )
        result.append(Settlement(str(eid), rows, d))
    write_performance_features(dataset_dir)
    return result


def write_performance_features(dataset_dir: Path) -> int:
    """Rebuild ``features/dr_performance.parquet`` from every stored settlement; rows written."""
    src = settlements_dir(dataset_dir)
    files = sorted(src.glob("*.parquet"))
    if not files:
        raise DataError(f"no settlements in {src}: run `wattwise dr settle` first")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tbl = con.execute(
        f"""
        WITH s AS (
          SELECT customer_id, settled_at, event_end, reduction_kw,
                 reduction_kwh / nullif(baseline_kwh, 0) AS share, baseline_kw
          FROM read_parquet({[str(f) for f in files]!r}, union_by_name=true)
          WHERE called AND reduction_kw IS NOT NULL),
        cum AS (
          SELECT customer_id, settled_at, event_end,
                 count(*) OVER w AS n, avg(reduction_kw) OVER w AS mean_kw,
                 reduction_kw AS last_kw, stddev_samp(reduction_kw) OVER w AS sd_kw,
                 avg(share) OVER w AS share, avg(baseline_kw) OVER w AS base_kw
          FROM s WINDOW w AS (PARTITION BY customer_id ORDER BY settled_at
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
        months AS (
          SELECT unnest(generate_series(date_trunc('month', min(settled_at)) + INTERVAL 1 MONTH,
                                        date_trunc('month', max(settled_at)) + INTERVAL 3 MONTH,
                                        INTERVAL 1 MONTH)) AS ts FROM s),
        times AS (SELECT DISTINCT settled_at AS ts FROM s UNION SELECT ts FROM months),
        grid AS (SELECT c.customer_id, t.ts FROM (SELECT DISTINCT customer_id FROM s) c, times t)
        SELECT g.customer_id, g.ts AS event_timestamp, g.ts AS created_timestamp,
               c.n AS drp_events_settled, c.mean_kw AS drp_mean_reduction_kw,
               c.last_kw AS drp_last_reduction_kw, c.sd_kw AS drp_std_reduction_kw,
               c.share AS drp_mean_reduction_share, c.base_kw AS drp_mean_baseline_kw,
               date_diff('day', c.event_end, g.ts) AS drp_days_since_last_event
        FROM grid g ASOF JOIN cum c ON g.customer_id = c.customer_id AND g.ts >= c.settled_at
        ORDER BY event_timestamp, customer_id"""
    ).arrow()
    tbl = tbl.read_all() if hasattr(tbl, "read_all") else tbl
    fields = []
    for f in tbl.schema:
        t = f.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        elif pa.types.is_integer(t):
            t = pa.int64()
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            t = pa.float64()
        fields.append(pa.field(f.name, t))
    tbl = tbl.cast(pa.schema(fields))
    expected = [
        "customer_id",
        "event_timestamp",
        "created_timestamp",
        *DR_PERFORMANCE.feature_names,
    ]
    if tbl.column_names != expected:
        raise DataError(f"dr_performance columns {tbl.column_names} differ from {expected}")
    out = dataset_dir / "features" / f"{DR_PERFORMANCE.name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, out, compression="zstd")
    log.info("wrote %s rows to %s", tbl.num_rows, out)
    return int(tbl.num_rows)
