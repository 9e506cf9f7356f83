"""Load statistics computed the same way for the synthetic utility and real households."""

from __future__ import annotations

import duckdb


def daily_stats(reads_sql: str, local_offset_hours: int = 0) -> dict[str, float]:
    """Daily kWh distribution, evening-peak share (16:00-21:00 local) and load factor.

    ``reads_sql`` is a query yielding (meter, ts, kwh); only complete days count.
    """
    con = duckdb.connect()
    row = con.execute(
        f"""
        with r as ({reads_sql}),
        d as (
          select meter, date_trunc('day', ts + interval ({local_offset_hours}) hour) dday,
                 sum(kwh) kwh, count(*) n, max(kwh) peak, avg(kwh) mean,
                 sum(case when hour(ts + interval ({local_offset_hours}) hour) between 16 and 20
                          then kwh else 0 end) eve
          from r group by all)
        select avg(kwh), median(kwh), quantile_cont(kwh, 0.1), quantile_cont(kwh, 0.9),
               sum(eve) / sum(kwh), avg(mean / nullif(peak, 0))
        from d where n = (select max(n) from d)
        """
    ).fetchone()
    assert row is not None
    keys = [
        "mean_daily_kwh",
        "median_daily_kwh",
        "p10_daily_kwh",
        "p90_daily_kwh",
        "evening_peak_share",
        "load_factor",
    ]
    return dict(zip(keys, (float(v) for v in row), strict=True))
