"""REDD low-frequency house data: mains plus sub-metered circuits at native (3 s) resolution.

Written to ``highres_power`` (long form, see features/schema.py) because interval_reads holds
energy per interval. REDD kept no absolute dates: ``ts`` = :data:`EPOCH` + t_seconds (the REDD
recording period began in April 2011) and t_seconds is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.common import ImportReport, check_not_empty, file_hash, load_table
from wattwise.errors import DataError

EPOCH = datetime(2011, 4, 16, tzinfo=UTC)
APPLIANCE_MAP = {
    "FRE": "refrigerator",
    "DWE": "dishwasher",
    "MIC": "cooking",
    "STO": "cooking",
    "OVE": "cooking",
    "WAD": "laundry",
    "WDU": "laundry",
    "FUR": "hvac",
    "AIR": "hvac",
    "HEA": "hvac",
    "LI": "lighting",
    "BAT": "base",
    "SMO": "base",
    "ELE": "base",
    "SO": None,
}


def _repeat(text: str, n: int) -> pa.Array:
    """``n`` copies of one string, built in Arrow (no Python list or object array)."""
    codes = pa.array(np.zeros(n, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(codes, pa.array([text], pa.string())).cast(pa.string())


def appliance_of(channel: str) -> str | None:
    """Canonical appliance of a REDD circuit code (digits stripped: LI3 -> lighting)."""
    return APPLIANCE_MAP.get(re.sub(r"\d+$", "", channel.upper()))


def import_redd(
    paths: list[Path], dataset_dir: Path, *, report: ImportReport | None = None
) -> ImportReport:
    """Import REDD house CSVs (t_seconds, aggregate_W, circuits...) into highres_power."""
    import pyarrow.csv as pcsv

    report = report or ImportReport("redd", dataset_dir)
    for path in paths:
        check_not_empty(path)
        try:
            t = pcsv.read_csv(path)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from exc
        if "t_seconds" not in t.column_names or "aggregate_W" not in t.column_names:
            raise DataError(f"{path}: not a REDD file (needs t_seconds and aggregate_W columns)")
        house = re.search(r"house_?(\d+)", path.name)
        meter_id = f"redd:house{house.group(1) if house else path.stem}"
        secs = t.column("t_seconds").cast(pa.int64())
        base_us = int(EPOCH.timestamp()) * 1_000_000
        ts = pc.add(pc.multiply(secs, 1_000_000), base_us).cast(pa.timestamp("us", tz="UTC"))
        channels = [c for c in t.column_names if c != "t_seconds"]
        n = t.num_rows
        parts = []
        for c in channels:
            name = "aggregate" if c == "aggregate_W" else c
            appliance = None if name == "aggregate" else appliance_of(name)
            parts.append(
                pa.table(
                    {
                        "meter_id": _repeat(meter_id, n),
                        "ts": ts,
                        "t_seconds": secs,
                        "channel": _repeat(name, n),
                        "appliance": pa.nulls(n, pa.string())
                        if appliance is None
                        else _repeat(appliance, n),
                        "watts": t.column(c).cast(pa.float32()),
                    }
                )
            )
        tag = file_hash(path)
        load_table(
            dataset_dir,
            "meters",
            pa.table(
                {
                    "meter_id": [meter_id],
                    "service_kind": ["electric"],
                    "interval_minutes": pa.array([1], pa.int16()),
                    "unit": ["kWh"],
                    "installed_at": pa.array([EPOCH], pa.timestamp("us", tz="UTC")),
                }
            ),
            source=str(path),
            tag=tag,
            report=report,
        )
        load_table(
            dataset_dir,
            "highres_power",
            pa.concat_tables(parts),
            source=str(path),
            tag=tag,
            report=report,
        )
        report.files.append(str(path))
    return report
