"""Import throughput: Green Button XML (readings/s) and interval CSV (rows/s), plus peak RSS.

Goals (2 cores): Green Button >= 500,000 readings/s, CSV >= 2,000,000 rows/s, end to end.
Each row carries the 1-minute load average at its start: other jobs on the machine slow
every stage, so compare figures taken at similar load.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv


def _greenbutton(path: Path, n: int, meters: int = 4, per: int = 96) -> int:
    """Write a feed of ``n`` 15-minute readings (1 block per meter-day); returns the count."""
    reading = (
        "<espi:IntervalReading><espi:cost>{c}</espi:cost><espi:timePeriod>"
        "<espi:duration>900</espi:duration><espi:start>{s}</espi:start></espi:timePeriod>"
        "<espi:value>{v}</espi:value></espi:IntervalReading>\n"
    )
    days = max(1, n // per // meters)
    with open(path, "w") as f:
        f.write(
            '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:espi="http://naesb.org/espi">\n'
        )
        for m in range(meters):
            href = f"https://x/espi/1_1/resource/Subscription/1/UsagePoint/{m}/MeterReading/1"
            for d in range(days):
                t0 = 1293868800 + d * 86400
                f.write(
                    f'<entry><link rel="up" href="{href}/IntervalBlock"/><content>'
                    f"<espi:IntervalBlock><espi:interval><espi:duration>86400</espi:duration>"
                    f"<espi:start>{t0}</espi:start></espi:interval>\n"
                )
                f.write("".join(reading.format(c=i, s=t0 + 900 * i, v=100 + i) for i in range(per)))
                f.write("</espi:IntervalBlock></content></entry>\n")
        f.write("</feed>\n")
    return days * meters * per


def _csv(path: Path, n: int, meters: int = 1000) -> int:
    per = n // meters
    ts = np.datetime64("2024-01-01T00:00") + np.arange(per) * np.timedelta64(15, "m")
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        for i, m0 in enumerate(range(0, meters, 50)):
            ids = np.repeat([f"m{j:05d}" for j in range(m0, m0 + 50)], per)
            t = pa.table(
                {
                    "meter_id": ids,
                    "timestamp": np.tile(ts, 50).astype("datetime64[s]"),
                    "kwh": rng.random(50 * per).round(3),
                }
            )
            pcsv.write_csv(t, f, pcsv.WriteOptions(include_header=i == 0))
    return per * meters


def run(quick: bool = False) -> list[dict]:
    """Generate inputs in a temp dir, import them, return throughput rows."""
    from features.ingest.greenbutton import import_greenbutton
    from features.ingest.intervals import import_intervals

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        n = _greenbutton(d / "gb.xml", 200_000 if quick else 2_000_000)
        size = (d / "gb.xml").stat().st_size
        load = os.getloadavg()[0]
        t = time.perf_counter()
        import_greenbutton([d / "gb.xml"], d / "ds_gb", unit="Wh")
        dt = time.perf_counter() - t
        rows.append(
            {
                "benchmark": "greenbutton_import",
                "value": n / dt,
                "unit": "readings/s",
                "goal": 500_000,
                "readings": n,
                "file_mb": size / 1e6,
                "seconds": dt,
                "load": load,
            }
        )
        (d / "gb.xml").unlink()
        n = _csv(d / "reads.csv", 2_000_000 if quick else 20_000_000)
        load = os.getloadavg()[0]
        t = time.perf_counter()
        import_intervals([d / "reads.csv"], d / "ds_csv", interval_minutes=15)
        dt = time.perf_counter() - t
        rows.append(
            {
                "benchmark": "csv_interval_import",
                "value": n / dt,
                "unit": "rows/s",
                "goal": 2_000_000,
                "rows": n,
                "seconds": dt,
                "load": load,
            }
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append({"benchmark": "import_peak_rss", "value": rss, "unit": "MiB", "goal": None})
    return rows


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(r)
