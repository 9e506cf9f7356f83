"""Low Carbon London (LCL) smart meters, the 2013 dynamic ToU tariff and London weather.

* customers: households present in the readings; ``tariff`` dynamic (ToU) or flat (Std),
  ``segment`` = ACORN group, ``region`` london.
* meters / interval_reads: half-hourly kWh (space-padded strings are trimmed); LCL's clock is
  fixed GMT, which is UTC.
* tariff_rates: flat 14.228 p/kWh (Std) and the dynamic tariff's Normal rate 11.76 p/kWh, in
  GBP per kWh; High/Low prices are events.
* events: each contiguous run of High half-hours is a ``price_high`` event (67.20 p/kWh), each
  run of Low a ``price_low`` event (3.99 p/kWh). Event ids are ``lcl-<kind>-<start UTC>``, stable.
* event_participants: ToU households called=True; Std households listed called=False (the
  comparison group), so effect estimation has both groups in one table.
* weather: hourly Dark Sky temperature and humidity, region london (no irradiance: null).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from features.ingest.common import ImportReport, check_not_empty, file_hash, load_table
from wattwise.errors import DataError

PRICES_GBP = {"Normal": 0.1176, "Low": 0.0399, "High": 0.6720}
FLAT_GBP = 0.14228
VALID_FROM = date(2013, 1, 1)


def _find(paths: list[Path], pattern: str, default: Path | None) -> Path | None:
    for p in paths:
        cands = sorted(p.glob(pattern)) if p.is_dir() else ([p] if p.match(pattern) else [])
        if cands:
            return cands[0]
    return default if default is not None and default.exists() else None


def import_lcl(
    paths: list[Path],
    dataset_dir: Path,
    *,
    shared_dir: Path | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import the LCL folder (readings + household info) plus the tariff and weather files."""
    report = report or ImportReport("lcl", dataset_dir)
    root = shared_dir or (paths[0].parent if paths[0].is_dir() else paths[0].parent.parent)
    reads_p = _find(paths, "*.csv.gz", None) or _find(paths, "halfhourly*.csv", None)
    info_p = _find(paths, "informations_households.csv", None)
    tariff_p = _find(paths, "Tariffs_table.csv", root / "lcl_tou_tariff" / "Tariffs_table.csv")
    weather_p = _find(
        paths, "weather_hourly*.csv", root / "london_weather" / "weather_hourly_darksky.csv"
    )
    if reads_p is None or info_p is None:
        raise DataError(
            f"{paths[0]}: LCL import needs the half-hourly CSV(.gz) and informations_households.csv"
        )
    for p in (reads_p, info_p):
        check_not_empty(p)
    con = duckdb.connect()
    try:
        try:
            con.execute(f"""CREATE TABLE r AS SELECT trim(LCLid) AS meter_id,
                CAST(tstp AS TIMESTAMP) AT TIME ZONE 'UTC' AS ts,
                TRY_CAST(trim("energy(kWh/hh)") AS DOUBLE) AS kwh,
                trim("energy(kWh/hh)") AS raw
                FROM read_csv('{reads_p}', header=true, all_varchar=true)""")
        except duckdb.Error as exc:
            raise DataError(
                f"{reads_p}: cannot read LCL readings: {str(exc).splitlines()[0]}"
            ) from exc
        info = con.execute(f"""SELECT LCLid AS customer_id,
            CASE stdorToU WHEN 'ToU' THEN 'dynamic' WHEN 'Std' THEN 'flat' END AS tariff,
            Acorn AS segment, 'london' AS region, 'lcl' AS source
            FROM read_csv('{info_p}', header=true, all_varchar=true)
            WHERE LCLid IN (SELECT DISTINCT meter_id FROM r) ORDER BY 1""").arrow()
        info = info.read_all() if hasattr(info, "read_all") else info
        tag = file_hash(reads_p)
        load_table(dataset_dir, "customers", info, source=str(info_p), tag=tag, report=report)
        meters = _arrow(
            con.execute("""SELECT meter_id, meter_id AS customer_id,
            'electric' AS service_kind, 30::SMALLINT AS interval_minutes, 'kWh' AS unit,
            'Europe/London' AS timezone, min(ts) AS installed_at FROM r GROUP BY 1 ORDER BY 1""")
        )
        load_table(dataset_dir, "meters", meters, source=str(reads_p), tag=tag, report=report)
        from collections import Counter

        from features.quality import check_interval_reads

        row = con.execute(
            "SELECT count(*) FROM r WHERE kwh IS NULL AND raw IS NOT NULL "
            "AND raw NOT IN ('', 'Null')"
        ).fetchone()
        unparsed = row[0] if row else 0
        reads = _arrow(con.execute("SELECT meter_id, ts, kwh FROM r"))
        res = check_interval_reads(reads, 30)
        notes = Counter(res.notes)
        if unparsed:
            notes["unparseable kWh strings (loaded as null)"] += unparsed
        load_table(
            dataset_dir,
            "interval_reads",
            reads,
            source=str(reads_p),
            tag=tag,
            report=report,
            result=res,
            notes=notes,
        )
        load_table(
            dataset_dir,
            "tariff_rates",
            pa.table(
                {
                    "tariff": ["flat", "dynamic"],
                    "day_type": ["all", "all"],
                    "hour_start": pa.array([0, 0], pa.int8()),
                    "hour_end": pa.array([24, 24], pa.int8()),
                    "price_per_kwh": [FLAT_GBP, PRICES_GBP["Normal"]],
                    "valid_from": [VALID_FROM, VALID_FROM],
                }
            ),
            source="lcl tariffs",
            tag=tag,
            report=report,
        )
        if tariff_p is not None:
            _events(con, tariff_p, info, dataset_dir, report)
        if weather_p is not None:
            check_not_empty(weather_p)
            w = _arrow(
                con.execute(f"""SELECT 'london' AS region,
                CAST(time AS TIMESTAMP) AT TIME ZONE 'UTC' AS ts,
                TRY_CAST(temperature AS DOUBLE) AS temperature_c,
                TRY_CAST(humidity AS DOUBLE) AS humidity
                FROM read_csv('{weather_p}', header=true, all_varchar=true) ORDER BY ts""")
            )
            load_table(
                dataset_dir,
                "weather",
                w,
                source=str(weather_p),
                tag=file_hash(weather_p),
                report=report,
            )
    finally:
        con.close()
    report.files += [str(p) for p in (reads_p, info_p, tariff_p, weather_p) if p]
    return report


def _arrow(rel: duckdb.DuckDBPyConnection) -> pa.Table:
    t = rel.arrow()
    return t.read_all() if hasattr(t, "read_all") else t


def _events(
    con: duckdb.DuckDBPyConnection,
    tariff_p: Path,
    info: pa.Table,
    dataset_dir: Path,
    report: ImportReport,
) -> None:
    """Contiguous High / Low runs of the half-hourly signal become price events."""
    check_not_empty(tariff_p)
    ev = _arrow(
        con.execute(f"""
        WITH t AS (SELECT CAST(TariffDateTime AS TIMESTAMP) AT TIME ZONE 'UTC' AS ts,
                          trim(Tariff, ' \r\n\t') AS level
                   FROM read_csv('{tariff_p}', header=true, all_varchar=true)),
        g AS (SELECT *, ts - INTERVAL 30 MINUTE * row_number() OVER (PARTITION BY level
              ORDER BY ts) AS grp FROM t WHERE level IN ('High', 'Low'))
        SELECT CASE level WHEN 'High' THEN 'price_high' ELSE 'price_low' END AS kind,
               min(ts) AS start, max(ts) + INTERVAL 30 MINUTE AS "end",
               CASE level WHEN 'High' THEN {PRICES_GBP["High"]} ELSE {PRICES_GBP["Low"]} END
                 AS price_per_kwh,
               'london' AS region
        FROM g GROUP BY level, grp ORDER BY start""")
    )
    if ev.num_rows == 0:
        return
    import pyarrow.compute as pc

    ids = pc.binary_join_element_wise(
        "lcl-", ev.column("kind"), "-", pc.strftime(ev.column("start"), format="%Y%m%dT%H%MZ"), ""
    )
    ev = ev.append_column("event_id", ids)
    tag = file_hash(tariff_p)
    load_table(dataset_dir, "events", ev, source=str(tariff_p), tag=tag, report=report)
    con.register("ev", ev.select(["event_id"]))
    con.register("hh", info.select(["customer_id", "tariff"]))
    parts = _arrow(
        con.execute("""SELECT event_id, customer_id, tariff = 'dynamic' AS called
        FROM ev CROSS JOIN hh WHERE tariff IS NOT NULL ORDER BY 1, 2""")
    )
    load_table(
        dataset_dir, "event_participants", parts, source=str(tariff_p), tag=tag, report=report
    )
