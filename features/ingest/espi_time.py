"""ESPI LocalTimeParameters: DST rule decoding and local-clock to UTC conversion.

ESPI times are UTC epoch seconds by the standard; some utilities export local-clock epoch
seconds instead. For those, ``--local-times`` converts with the feed's tzOffset, dstOffset and
dstStartRule/dstEndRule (a 32-bit rule: seconds bits 0-11, hour 12-16, day of week 17-19
(1=Monday), day of month 20-24, operator 25-27, month 28-31).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

NO_DST = 0xFFFFFFFF


@dataclass(frozen=True)
class LocalTime:
    """A feed's LocalTimeParameters."""

    tz_offset: int = 0
    dst_offset: int = 0
    dst_start_rule: int = NO_DST
    dst_end_rule: int = NO_DST

    @property
    def has_dst(self) -> bool:
        return self.dst_offset != 0 and NO_DST not in (self.dst_start_rule, self.dst_end_rule)


def rule_wall_seconds(rule: int, year: int) -> int:
    """Local standard-clock epoch seconds of a DST rule's transition in ``year``."""
    seconds = rule & 0xFFF
    hour = (rule >> 12) & 0x1F
    dow = (rule >> 17) & 0x7
    dom = (rule >> 20) & 0x1F
    op = (rule >> 25) & 0x7
    month = (rule >> 28) & 0xF
    if not 1 <= month <= 12:
        raise ValueError(f"DST rule {rule:08X}: month {month} out of range")
    ndays = calendar.monthrange(year, month)[1]
    if op == 0:
        day = dom
    else:
        wd = (dow - 1) % 7  # python weekday, Monday = 0
        if op == 1:
            first = datetime(year, month, max(dom, 1))
            day = first.day + (wd - first.weekday()) % 7
        elif 2 <= op <= 5:
            first = datetime(year, month, 1)
            day = 1 + (wd - first.weekday()) % 7 + 7 * (op - 2)
        elif op == 6:
            last = datetime(year, month, ndays)
            day = ndays - (last.weekday() - wd) % 7
        else:
            raise ValueError(f"DST rule {rule:08X}: operator {op} not supported")
    start = datetime(year, month, day) + timedelta(hours=hour, seconds=seconds)
    return calendar.timegm(start.timetuple())


def local_to_utc(wall: np.ndarray, lt: LocalTime) -> tuple[np.ndarray, np.ndarray]:
    """Convert local-clock epoch seconds to UTC; returns (utc seconds, nonexistent mask).

    In the repeated hour after DST ends, the first occurrence of a wall time (in array order)
    is taken as daylight time and later ones as standard time. Wall times in the skipped hour
    when DST starts do not exist and are flagged.
    """
    wall = np.asarray(wall, dtype=np.int64)
    std = wall - lt.tz_offset
    if not lt.has_dst or wall.size == 0:
        return std, np.zeros(wall.size, dtype=bool)
    years = range(
        datetime.utcfromtimestamp(int(wall.min())).year - 1,
        datetime.utcfromtimestamp(int(wall.max())).year + 2,
    )
    starts = np.array([rule_wall_seconds(lt.dst_start_rule, y) - lt.tz_offset for y in years])
    ends = np.array(
        [rule_wall_seconds(lt.dst_end_rule, y) - lt.tz_offset - lt.dst_offset for y in years]
    )

    def in_dst(u: np.ndarray) -> np.ndarray:
        i = np.searchsorted(starts, u, side="right") - 1
        ok = i >= 0
        i = np.clip(i, 0, len(starts) - 1)
        return ok & (u >= starts[i]) & (u < ends[i])

    dst = std - lt.dst_offset
    std_ok = ~in_dst(std)
    dst_ok = in_dst(dst)
    utc = np.where(dst_ok, dst, std)
    ambiguous = std_ok & dst_ok
    if ambiguous.any():
        idx = np.flatnonzero(ambiguous)
        order = np.lexsort((idx, wall[idx]))
        sorted_wall = wall[idx][order]
        repeat = np.r_[False, sorted_wall[1:] == sorted_wall[:-1]]
        later = idx[order][repeat]
        utc[later] = std[later]
    return utc, ~(std_ok | dst_ok)


def iana_zone(lt: LocalTime) -> str:
    """Best IANA zone for a feed's parameters (North American zones, else fixed offset)."""
    us = {
        -18000: "America/New_York",
        -21600: "America/Chicago",
        -25200: "America/Denver",
        -28800: "America/Los_Angeles",
        -32400: "America/Anchorage",
        -36000: "Pacific/Honolulu",
    }
    if lt.tz_offset in us and (lt.has_dst or lt.tz_offset == -36000):
        return us[lt.tz_offset]
    if lt.tz_offset == -25200:
        return "America/Phoenix"
    if lt.tz_offset % 3600 == 0:
        h = -lt.tz_offset // 3600
        return "UTC" if h == 0 else f"Etc/GMT{h:+d}"
    return "UTC"
