"""Events and participants from the canonical tables, placed on a panel's local clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.dr.panel import HourlyPanel, _glob, local_hours
from wattwise.errors import DataError

HOUR_US = 3_600_000_000


def to_us(s: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) of a timestamp column, whatever its resolution."""
    return pd.to_datetime(s, utc=True).dt.as_unit("us").astype("int64").to_numpy()


def read_events(dataset_dir: Path, kinds: tuple[str, ...] = ("dr",)) -> pd.DataFrame:
    """Events of the given kinds, oldest first."""
    con = duckdb.connect()
    kinds_sql = ", ".join(f"'{k}'" for k in kinds)
    return con.execute(
        f"""SELECT event_id, kind, region, start, "end", notified_at, incentive_per_kwh,
                   price_per_kwh
            FROM {_glob(dataset_dir, "events")} WHERE kind IN ({kinds_sql})
            ORDER BY start, event_id"""
    ).fetchdf()


def read_participants(dataset_dir: Path, event_ids: list[str] | None = None) -> pd.DataFrame:
    """event_id, customer_id, called (all events, or those listed)."""
    con = duckdb.connect()
    df = con.execute(
        f"SELECT event_id, customer_id, called FROM {_glob(dataset_dir, 'event_participants')}"
    ).fetchdf()
    if event_ids is not None:
        df = df[df.event_id.isin(event_ids)]
    return df.reset_index(drop=True)


def local_window(start: pd.Timestamp, end: pd.Timestamp, tz: str) -> tuple[dt.date, int, int]:
    """(local date, first hour, end hour exclusive) of an event in zone ``tz``."""
    uh = np.array([start.value // 1000 // HOUR_US, -(-end.value // 1000 // HOUR_US)], np.int64)
    lh = local_hours(uh, tz)
    day = dt.date(1970, 1, 1) + dt.timedelta(days=int(lh[0] // 24))
    s = int(lh[0] % 24)
    e = int(lh[1] - (lh[0] // 24) * 24)
    if e > 24:
        raise DataError(f"event {start}..{end} crosses local midnight in {tz}: not supported")
    return day, s, e


def event_days(panel: HourlyPanel, events: pd.DataFrame, participants: pd.DataFrame) -> np.ndarray:
    """(C, D) days on which each customer of ``panel`` was called for an event (or priced)."""
    C, D = panel.kwh.shape[:2]
    out = np.zeros((C, D), bool)
    called = participants[participants.called]
    if called.empty or events.empty:
        return out
    ev = events.set_index("event_id")
    ev = ev[ev.index.isin(called.event_id.unique())]
    if ev.empty:
        return out
    start_uh = to_us(ev["start"]) // HOUR_US
    end_uh = np.maximum((to_us(ev["end"]) - 1) // HOUR_US, start_uh)
    first = (panel.first_day - dt.date(1970, 1, 1)).days
    days_s = local_hours(start_uh, panel.tz) // 24 - first
    days_e = local_hours(np.asarray(end_uh, np.int64), panel.tz) // 24 - first
    ci = pd.Index(panel.customers).get_indexer(called.customer_id)
    for days in (days_s, days_e):
        d = called.event_id.map(pd.Series(days, index=ev.index)).fillna(-1).to_numpy(np.int64)
        ok = (ci >= 0) & (d >= 0) & (d < D)
        out[ci[ok], d[ok]] = True
    return out
