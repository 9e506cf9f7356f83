"""Usage view: what the meters did in the window against the same customers' previous windows.

The churn features summarise 30-365 days, so one week of a shift barely moves them while
ordinary seasonal change moves them more. This view looks at the window itself, from the
interval reads, with a rolling reference of the same customers' previous ``baseline``
windows (same season, same homes), and checks what a sudden shift changes:

* **level**: the median over customers of (mean kWh per read in the window / in the
  baseline) - a heat wave or a cold snap moves every home at once;
* **jumps**: meters whose level is ``jump_factor`` times above the highest (or below the
  lowest) of their baseline windows, or with a whole day of zero reads they did not have
  before (a meter stuck at zero or reading 10x);
* **new high evening loads**: homes with ``high_intervals`` reads at >= ``high_kw`` between
  17:00 and 02:00 local that had none in the baseline (new EV chargers, new heat pumps);
* **missing reads**: the share of expected reads that did not arrive, against the baseline.

One DuckDB scan gives per customer and period the few numbers the checks need
(:func:`period_usage`); :func:`usage_check` turns them into a typed :class:`UsageCheck`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.monitoring.config import UsageConfig
from wattwise.errors import DataError

log = logging.getLogger(__name__)

PERIOD_COLUMNS = ("customer_id", "period", "reads", "expected", "kwh", "zero_days", "high")


@dataclass(frozen=True)
class UsageCheck:
    """The usage view of one window: statistics, the limits used and the alert reasons."""

    customers: int
    median_ratio: float | None
    jump_share: float
    jump_customers: int
    new_high_share: float
    new_high_customers: int
    missing_current: float
    missing_baseline: float
    limits: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageCheck:
        return cls(**d)


def _month_files(dataset: Path, start: datetime, end: datetime) -> list[str]:
    """interval_reads files of the months that overlap [start, end) (hive ``month=`` folders)."""
    root = dataset / "interval_reads"
    if not root.is_dir():
        raise DataError(f"no interval_reads under {dataset}: the usage view needs the reads")
    months = pd.period_range(start.replace(tzinfo=None), end.replace(tzinfo=None), freq="M")
    files: list[str] = []
    for m in months:
        d = root / f"month={m}"
        if d.is_dir():
            files += sorted(p.as_posix() for p in d.rglob("*.parquet"))
    if not files:  # not partitioned by month: scan everything, the ts filter prunes
        files = sorted(p.as_posix() for p in root.rglob("*.parquet"))
    return files


def period_usage(
    dataset: Path, end: datetime, window: timedelta, periods: int, cfg: UsageConfig
) -> pd.DataFrame:
    """Per customer and period (-1: [end - window, end), -2: the window before, ...).

    Columns: reads (present), expected (reads the meters should have sent), kwh, zero_days
    (UTC days with >= half their reads, all zero), high (reads >= ``high_kw`` from 17:00 to
    02:00 local). Electric meters only.
    """
    import duckdb

    from features.pipeline.sources import HOUR_US, offset_sql, zone_segments

    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    start = end - periods * window
    files = _month_files(dataset, start, end)
    meters_dir = dataset / "meters"
    if not meters_dir.is_dir():
        raise DataError(f"no meters table under {dataset}: the usage view needs it")
    meters = pd.read_parquet(
        meters_dir,
        columns=["meter_id", "customer_id", "service_kind", "interval_minutes", "timezone"],
    )
    meters = meters[meters["service_kind"] == "electric"].drop(columns="service_kind")
    if meters.empty:
        raise DataError(f"no electric meters under {dataset}")
    end_us = int(pd.Timestamp(end).value // 1000)
    start_us = int(pd.Timestamp(start).value // 1000)
    win_us = int(window.total_seconds() * 1_000_000)
    zones = {
        str(tz): zone_segments(str(tz), start_us, end_us)
        for tz in meters["timezone"].dropna().unique()
    }
    lo, hi = cfg.evening_hours
    in_evening = (
        f"(lhour >= {lo} OR lhour < {hi})" if lo > hi else f"(lhour >= {lo} AND lhour < {hi})"
    )
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {cfg.threads}")
        con.register("mon_meters", meters)
        sql = f"""
        WITH r AS (
            SELECT m.customer_id, m.interval_minutes AS im, r.kwh,
                   epoch_us(r.ts) AS us, m.timezone AS tz
            FROM read_parquet({files!r}, hive_partitioning = false, union_by_name = true) r
            JOIN mon_meters m USING (meter_id)
            WHERE r.ts >= make_timestamptz({start_us}) AND r.ts < make_timestamptz({end_us})
        ), p AS (
            SELECT customer_id, im, kwh,
                   CAST(floor((us - {end_us}) / {win_us}) AS INTEGER) AS period,
                   us // 86400000000 AS day,
                   ((us + {offset_sql(zones, "us", "tz")}) // {HOUR_US}) % 24 AS lhour
            FROM r
        ), d AS (
            SELECT customer_id, period, day, any_value(im) AS im, count(kwh) AS n,
                   sum(kwh) AS kwh,
                   count_if(kwh * 60.0 / im >= {cfg.high_kw} AND {in_evening}) AS high
            FROM p GROUP BY ALL
        )
        SELECT customer_id, period, sum(n) AS reads, sum(kwh) AS kwh,
               count_if(kwh = 0 AND n >= 0.5 * 1440 / im) AS zero_days, sum(high) AS high
        FROM d GROUP BY ALL
        """
        per = con.execute(sql).df()
    finally:
        con.close()
    # expected reads: every electric meter of the customer, whole periods
    exp = (
        meters.assign(e=win_us / (meters["interval_minutes"].astype("float64") * 60e6))
        .groupby("customer_id")["e"]
        .sum()
    )
    per["expected"] = per["customer_id"].map(exp).astype("float64")
    return per[list(PERIOD_COLUMNS)]


def usage_check(
    per: pd.DataFrame,
    cfg: UsageConfig,
    *,
    current: int = -1,
    customers: pd.Index | None = None,
) -> UsageCheck:
    """The window ``current`` against the ``cfg.baseline`` periods before it, same customers."""
    if customers is not None:
        per = per[per["customer_id"].isin(customers)]
    base_periods = list(range(current - cfg.baseline, current))
    cur = per[per["period"] == current].set_index("customer_id")
    before = per[per["period"].isin(base_periods)]
    base = before.groupby("customer_id")[["reads", "expected", "kwh", "zero_days", "high"]].sum()
    weekly = (before["kwh"] / before["reads"].where(before["reads"] > 0)).groupby(
        before["customer_id"]
    )
    ids = cur.index.intersection(base.index)
    cur, base = cur.loc[ids], base.loc[ids]
    lo, hi = weekly.min().reindex(ids), weekly.max().reindex(ids)
    n = len(ids)
    if n == 0:
        return UsageCheck(0, None, 0.0, 0, 0.0, 0, 0.0, 0.0, reasons=[])
    level_cur = cur["kwh"] / cur["reads"].where(cur["reads"] > 0)
    level_base = base["kwh"] / base["reads"].where(base["reads"] > 0)
    ratio = (level_cur / level_base.where(level_base > 0)).replace([np.inf, -np.inf], np.nan)
    f = cfg.jump_factor
    # beyond every baseline window's own level: a seasonal swing of the baseline is no jump
    jump = (level_cur > f * hi) | (level_cur < lo / f)
    jump |= (cur["zero_days"] >= 1) & (base["zero_days"] == 0)
    new_high = (cur["high"] >= cfg.high_intervals) & (base["high"] == 0)
    miss_cur = float(1 - cur["reads"].sum() / max(cur["expected"].sum(), 1.0))
    miss_base = float(1 - base["reads"].sum() / max(base["expected"].sum(), 1.0))
    med = float(ratio.median()) if ratio.notna().any() else None
    chk = UsageCheck(
        customers=n,
        median_ratio=med,
        jump_share=float(jump.mean()),
        jump_customers=int(jump.sum()),
        new_high_share=float(new_high.mean()),
        new_high_customers=int(new_high.sum()),
        missing_current=max(miss_cur, 0.0),
        missing_baseline=max(miss_base, 0.0),
    )
    return decide_usage(chk, cfg)


def decide_usage(chk: UsageCheck, cfg: UsageConfig) -> UsageCheck:
    """``chk`` with the limits of ``cfg`` and the reasons they give (re-decidable)."""
    from dataclasses import replace

    limits = {
        "level_rise": cfg.level_rise,
        "level_fall": cfg.level_fall,
        "jump_share_max": cfg.jump_share_max,
        "new_high_share_max": cfg.new_high_share_max,
        "missing_increase": cfg.missing_increase,
        "min_customers": float(cfg.min_customers),
    }
    reasons: list[str] = []
    if chk.customers < cfg.min_customers:
        return replace(chk, limits=limits, reasons=[])
    m = chk.median_ratio
    if m is not None and m - 1 > cfg.level_rise:
        reasons.append(
            f"usage level up: median customer uses {m - 1:+.1%} per read vs the previous "
            f"{cfg.baseline} windows (limit +{cfg.level_rise:.1%})"
        )
    if m is not None and 1 - m > cfg.level_fall:
        reasons.append(
            f"usage level down: median customer uses {m - 1:+.1%} per read vs the previous "
            f"{cfg.baseline} windows (limit -{cfg.level_fall:.1%})"
        )
    if chk.jump_share > cfg.jump_share_max and chk.jump_customers >= cfg.min_flagged:
        reasons.append(
            f"meters jumped or stuck: {chk.jump_customers} customers ({chk.jump_share:.1%}) "
            f"read x{cfg.jump_factor:g} above (or below) every baseline window, or got a day "
            f"of zero reads "
            f"(limit {cfg.jump_share_max:.1%})"
        )
    if chk.new_high_share > cfg.new_high_share_max and chk.new_high_customers >= cfg.min_flagged:
        reasons.append(
            f"new high evening loads: {chk.new_high_customers} customers "
            f"({chk.new_high_share:.1%}) with >= {cfg.high_intervals} reads >= {cfg.high_kw:g} kW "
            f"after 17:00, none before (limit {cfg.new_high_share_max:.1%})"
        )
    if chk.missing_current - chk.missing_baseline > cfg.missing_increase:
        reasons.append(
            f"reads missing: {chk.missing_baseline:.1%} -> {chk.missing_current:.1%} of the "
            f"expected reads (limit +{cfg.missing_increase:.1%})"
        )
    return replace(chk, limits=limits, reasons=reasons)


def window_usage(dataset: Path, end: datetime, window: timedelta, cfg: UsageConfig) -> UsageCheck:
    """The usage view of the window ending at ``end`` (one scan of the reads)."""
    per = period_usage(dataset, end, window, cfg.baseline + 1, cfg)
    chk = usage_check(per, cfg)
    log.info("usage view %s..%s: %d customers, %s", end - window, end, chk.customers, chk.reasons)
    return chk
