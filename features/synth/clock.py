"""The time axis of a world: UTC intervals, local clocks per region, days, months, holidays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from features.synth.config import WorldConfig


def holidays(years: range) -> set[date]:
    """Public holidays that change daily routines (fixed and floating, US-style calendar)."""
    out: set[date] = set()
    for y in years:
        out |= {date(y, 1, 1), date(y, 7, 4), date(y, 12, 25), date(y, 12, 24), date(y, 12, 31)}
        # Memorial day (last Monday of May), Labor day (first Monday of Sep),
        # Thanksgiving (4th Thursday of Nov) and the day after.
        may31 = date(y, 5, 31)
        out.add(may31 - timedelta(days=(may31.weekday() - 0) % 7))
        sep1 = date(y, 9, 1)
        out.add(sep1 + timedelta(days=(0 - sep1.weekday()) % 7))
        nov1 = date(y, 11, 1)
        thanks = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        out |= {thanks, thanks + timedelta(days=1)}
    return out


@dataclass(frozen=True)
class Clock:
    """Arrays describing every interval of the world, shared by all generators.

    Per-region local clocks use the region's fixed UTC offset (no daylight saving: the
    synthetic utility's regions keep standard time, which keeps every day the same length).
    """

    cfg: WorldConfig
    ts_us: np.ndarray  # int64 µs since epoch, UTC interval starts, shape (T,)
    day_index: np.ndarray  # (R, T) local day index (0 = cfg.start) per region
    tod: np.ndarray  # (R, T) local interval-of-day index
    hour: np.ndarray  # (R, T) local hour as float (interval midpoint)
    weekend: np.ndarray  # (R, n_days + 1) weekend or holiday, per local day
    day_dates: list[date]  # local calendar dates, n_days + 1 (the last covers the offset spill)
    month_starts_day: np.ndarray  # index of the first day of each calendar month (UTC days)
    months: list[date]  # first day of each month covered
    month_of_day: np.ndarray  # month index per UTC day

    @property
    def n_steps(self) -> int:
        return int(self.ts_us.shape[0])

    @property
    def dt_h(self) -> float:
        return self.cfg.interval_minutes / 60.0


def build_clock(cfg: WorldConfig) -> Clock:
    """Compute the world's time axis once; every later stage indexes into it."""
    spd = cfg.steps_per_day
    T = cfg.n_steps
    step_us = cfg.interval_minutes * 60 * 1_000_000
    start_us = int((np.datetime64(cfg.start, "us") - np.datetime64(0, "us")).astype(np.int64))
    ts_us = start_us + np.arange(T, dtype=np.int64) * step_us
    steps = np.arange(T, dtype=np.int64)
    R = len(cfg.regions)
    day_index = np.empty((R, T), dtype=np.int32)
    tod = np.empty((R, T), dtype=np.int16)
    hour = np.empty((R, T), dtype=np.float32)
    for r, reg in enumerate(cfg.regions):
        local = steps + reg.utc_offset_hours * 60 // cfg.interval_minutes
        # local day -1 (before start) is folded into day 0 so arrays stay non-negative
        day_index[r] = np.clip(local // spd, 0, cfg.days)
        tod[r] = local % spd
        hour[r] = (tod[r] + 0.5) * cfg.interval_minutes / 60.0
    day_dates = [cfg.start + timedelta(days=i) for i in range(cfg.days + 1)]
    hol = holidays(range(cfg.start.year, cfg.end.year + 1))
    wk = np.array([d.weekday() >= 5 or d in hol for d in day_dates], dtype=bool)
    weekend = np.broadcast_to(wk, (R, cfg.days + 1)).copy()
    months: list[date] = []
    month_of_day = np.empty(cfg.days, dtype=np.int32)
    starts: list[int] = []
    for i, d in enumerate(day_dates[:-1]):
        m0 = d.replace(day=1)
        if not months or months[-1] != m0:
            months.append(m0)
            starts.append(i)
        month_of_day[i] = len(months) - 1
    return Clock(
        cfg=cfg,
        ts_us=ts_us,
        day_index=day_index,
        tod=tod,
        hour=hour,
        weekend=weekend,
        day_dates=day_dates,
        month_starts_day=np.array(starts, dtype=np.int64),
        months=months,
        month_of_day=month_of_day,
    )
