"""Dispatch an import by kind (the CLI and tests call this)."""

from __future__ import annotations

from pathlib import Path

from features.ingest.common import ImportReport
from wattwise.errors import DataError


def run_import(
    kind: str,
    paths: list[Path],
    dataset_dir: Path,
    *,
    tz: str = "UTC",
    unit: str | None = None,
    meter_col: str = "meter_id",
    ts_col: str = "timestamp",
    kwh_col: str = "kwh",
    interval: int | None = None,
    local_times: bool = False,
    shared_dir: Path | None = None,
) -> ImportReport:
    """Run the importer of ``kind`` on ``paths`` into ``dataset_dir``."""
    for p in paths:
        if not p.exists():
            raise DataError(f"{p}: file not found")
    if kind == "greenbutton":
        from features.ingest.greenbutton import import_greenbutton

        files = [f for p in paths for f in (sorted(p.glob("*.xml")) if p.is_dir() else [p])]
        return import_greenbutton(files, dataset_dir, unit=unit, local_times=local_times)
    if kind in ("csv", "parquet"):
        from features.ingest.intervals import IntervalColumns, import_intervals

        return import_intervals(
            paths,
            dataset_dir,
            fmt=kind,
            columns=IntervalColumns(meter_col, ts_col, kwh_col),
            tz=tz,
            unit=unit or "kWh",
            interval_minutes=interval,
            source=kind,
        )
    if kind == "lcl":
        from features.ingest.lcl import import_lcl

        return import_lcl(paths, dataset_dir, shared_dir=shared_dir)
    if kind == "redd":
        from features.ingest.redd import import_redd

        files = [f for p in paths for f in (sorted(p.glob("*.csv*")) if p.is_dir() else [p])]
        return import_redd(files, dataset_dir)
    if kind == "powerco":
        from features.ingest.powerco import import_powerco

        return import_powerco(paths, dataset_dir)
    raise DataError(f"unknown import kind {kind!r}")
