"""The two heavy passes over interval_reads and the small tables every usage feature uses.

``cday``: one row per (customer, local day) with sums, maxima and overnight bit masks.
``chour``: one row per (customer, snapshot period, day type, local hour). A day belongs to
period ``p`` = the first snapshot it ends before, so period sums never cross a snapshot.
"""

from __future__ import annotations

import duckdb

from features.pipeline.config import FeatureConfig
from features.pipeline.sources import DAY_US, HOUR_US

WINDOW_OF_FIRST_PERIOD_DAYS = 31


def build_meter_table(con: duckdb.DuckDBPyConnection) -> None:
    """Electric meters with an integer id (integer keys aggregate much faster than strings)."""
    con.execute(
        """CREATE OR REPLACE TABLE m AS
        SELECT meter_id, customer_id, coalesce(timezone, 'UTC') AS tz,
               coalesce(interval_minutes, 30)::INTEGER AS imin,
               (row_number() OVER (ORDER BY meter_id))::BIGINT AS idx
        FROM src_meters WHERE coalesce(service_kind, 'electric') = 'electric'"""
    )


def heavy_passes(con: duckdb.DuckDBPyConnection, cfg: FeatureConfig, off_sql: str) -> None:
    """Aggregate interval_reads into ``cday`` and ``chour`` (two scans of the reads)."""
    tod = f"(lu % {DAY_US})"
    hr = f"({tod} // {HOUR_US})"
    mi = f"({tod} // 60000000)"
    hi = f"(kwh * 60.0 / imin > {cfg.ev_kw})"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE mday AS
        WITH x AS (
          SELECT m.idx, m.imin, r.kwh, r.kwh_export, {off_sql} AS off, epoch_us(r.ts) AS us
          FROM src_interval_reads r JOIN m USING (meter_id)
        ), y AS (SELECT *, us + off AS lu FROM x)
        SELECT idx, any_value(imin) AS imin, (lu // {DAY_US})::INTEGER AS d,
          count(kwh) AS n, sum(kwh) AS kwh, max(kwh) AS kwh_max, sum(kwh_export) AS kexp,
          min(off) AS off_min,
          count(kwh) FILTER (WHERE {hr} BETWEEN 1 AND 4) AS n_night,
          sum(kwh) FILTER (WHERE {hr} BETWEEN 1 AND 4) AS knight,
          sum(kwh) FILTER (WHERE {hr} BETWEEN 16 AND 20
                           AND (lu // {DAY_US} + 4) % 7 NOT IN (0, 6)) AS kpeak,
          sum(kwh) FILTER (WHERE {hr} BETWEEN 17 AND 19) AS keve,
          bit_or(CASE WHEN {hi} AND {hr} >= 22
                 THEN (1::UBIGINT << least(63, ({mi} - 1320) // imin)::INTEGER) END) AS me,
          bit_or(CASE WHEN {hi} AND {hr} < 6
                 THEN (1::UBIGINT << least(63, ({mi} + 120) // imin)::INTEGER) END) AS mm
        FROM y GROUP BY idx, d"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE cday AS
        WITH c AS (
          SELECT m.customer_id, d.d, sum(n) AS n, sum(d.kwh) AS kwh,
            max(kwh_max * 60.0 / d.imin) AS kw_max, sum(kexp) AS kexp,
            sum(kpeak) AS kpeak, sum(keve) AS keve, sum(knight) AS knight,
            sum(n_night * d.imin / 60.0) AS night_h, sum(n * d.imin / 60.0) AS hours, bit_or(me) AS me, bit_or(mm) AS mm,
            min(n * d.imin / 1440.0) AS cover,
            (d.d + 1)::BIGINT * {DAY_US} - min(off_min) AS day_end
          FROM mday d JOIN m USING (idx) GROUP BY m.customer_id, d.d
        )
        SELECT c.*, cover >= {cfg.complete_day_share} AS complete,
          (d + 4) % 7 IN (0, 6) AS weekend,
          CASE WHEN lag(d) OVER w = d - 1 THEN (mm | coalesce(lag(me) OVER w, 0::UBIGINT))
               ELSE mm END AS night_mask
        FROM c WINDOW w AS (PARTITION BY customer_id ORDER BY d)"""
    )
    con.execute(
        """CREATE OR REPLACE TABLE cday AS
        SELECT c.*, s.si AS p FROM cday c ASOF LEFT JOIN snaps s ON c.day_end <= s.S"""
    )
    first = WINDOW_OF_FIRST_PERIOD_DAYS * DAY_US
    period = (
        "CASE "
        + " ".join(
            f"WHEN de <= {s} THEN {i}"
            for i, s in con.execute("SELECT si, S FROM snaps ORDER BY si").fetchall()
        )
        + " END"
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE chour AS
        WITH x AS (
          SELECT m.customer_id, m.imin, r.kwh, {off_sql} AS off, epoch_us(r.ts) AS us
          FROM src_interval_reads r JOIN m USING (meter_id)
        ), y AS (SELECT *, us + off AS lu FROM x), z AS (
          SELECT customer_id, imin, kwh, {hr}::INTEGER AS hr,
            (lu // {DAY_US} + 4) % 7 IN (0, 6) AS weekend,
            ((lu // {DAY_US}) + 1) * {DAY_US} - off AS de
          FROM y
        )
        SELECT customer_id, p, weekend, hr, sum(kwh) AS kwh, sum(imin) FILTER (WHERE kwh IS NOT NULL) / 60.0 AS hours
        FROM (SELECT *, {period} AS p FROM z
              WHERE de > (SELECT min(S) FROM snaps) - {first})
        WHERE p IS NOT NULL GROUP BY ALL"""
    )
