"""Source tables as DuckDB views, the snapshot calendar and local-time offsets.

Local time is computed with integer arithmetic (UTC microseconds + the zone's offset) instead
of ``AT TIME ZONE`` per reading: ICU conversion of 175 M timestamps is several times slower.
Offsets come from the IANA rules for the data's date range (DST zones become a small CASE).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
CANONICAL = (
    "customers",
    "meters",
    "interval_reads",
    "weather",
    "tariff_rates",
    "events",
    "event_participants",
    "bills",
    "payments",
    "contacts",
    "outages",
    "surveys",
    "offers",
    "enrollments",
)


def register_sources(con: duckdb.DuckDBPyConnection, dataset_dir: Path) -> set[str]:
    """Create one view per canonical table present in the dataset; return the names present."""
    present: set[str] = set()
    for name in CANONICAL:
        d = dataset_dir / name
        if not d.is_dir() or not any(d.rglob("*.parquet")):
            continue
        glob = (d / "**" / "*.parquet").as_posix()
        con.execute(
            f"CREATE OR REPLACE VIEW src_{name} AS SELECT * FROM "
            f"read_parquet('{glob}', hive_partitioning = false, union_by_name = true)"
        )
        present.add(name)
    log.info("sources present: %s", ", ".join(sorted(present)))
    return present


def default_snapshots(first: dt.date, last: dt.date) -> list[dt.date]:
    """First of every month from the second month of the data to the month after the last read."""
    out = []
    y, m = first.year, first.month
    while True:
        m += 1
        if m > 12:
            y, m = y + 1, 1
        d = dt.date(y, m, 1)
        out.append(d)
        if d > last:
            return out


def to_us(d: dt.date) -> int:
    """Midnight UTC of a date in epoch microseconds."""
    return (d - dt.date(1970, 1, 1)).days * DAY_US


def zone_segments(tz: str | None, start_us: int, end_us: int) -> list[tuple[int, int]]:
    """(from_us, offset_us) pieces of a zone's UTC offset over [start, end], hourly exact."""
    if not tz or tz.upper() in ("UTC", "ETC/UTC", "Z"):
        return [(start_us, 0)]
    idx = pd.date_range(
        pd.Timestamp(start_us, unit="us", tz="UTC").floor("h"),
        pd.Timestamp(end_us, unit="us", tz="UTC").ceil("h"),
        freq="h",
    )
    try:
        local = idx.tz_convert(tz)
    except Exception:  # noqa: BLE001 - an unknown zone name is a data problem, not a crash
        log.warning("unknown time zone %r: treating it as UTC", tz)
        return [(start_us, 0)]
    off = (local.tz_localize(None) - idx.tz_localize(None)).to_numpy().astype("timedelta64[us]")
    off_us = off.astype(np.int64)
    change = np.flatnonzero(np.diff(off_us)) + 1
    starts = np.concatenate([[0], change])
    us = idx.as_unit("us").asi8
    return [(int(us[i]), int(off_us[i])) for i in starts]


def offset_sql(zones: dict[str, list[tuple[int, int]]], us_col: str, tz_col: str) -> str:
    """SQL giving the UTC offset (µs) of ``us_col`` in zone ``tz_col`` (unknown zones: 0)."""
    whens = []
    for tz, segs in zones.items():
        if len(segs) == 1:
            expr = str(segs[0][1])
        else:
            inner = " ".join(
                f"WHEN {us_col} < {b} THEN {a[1]}"
                for a, (b, _) in zip(segs, segs[1:], strict=False)
            )
            expr = f"(CASE {inner} ELSE {segs[-1][1]} END)"
        whens.append(f"WHEN {tz_col} = '{tz.replace(chr(39), '')}' THEN {expr}")
    if not whens:
        return "0::BIGINT"
    return f"(CASE {' '.join(whens)} ELSE 0 END)::BIGINT"
