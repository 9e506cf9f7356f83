"""Generic interval CSV/Parquet import and the interval-read quality checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.ingest.run import run_import
from features.quality import NOT_ALIGNED, check_interval_reads
from features.tables import read_table
from wattwise.errors import DataError


def _csv(tmp_path: Path, text: str, name: str = "reads.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_wh_custom_columns_and_quarantine(tmp_path: Path) -> None:
    rows = ["id,when,e"] + [f"m1,2024-01-01 {h:02d}:00:00,{1000 * h}" for h in range(24)]
    rows += ["m1,2024-01-01 03:00:00,5", "m1,2024-01-01 05:17:00,5", "m1,2024-01-01 06:00:00,-4"]
    p = _csv(tmp_path, "\n".join(rows) + "\n")
    rep = run_import(
        "csv",
        [p],
        tmp_path / "ds",
        unit="Wh",
        meter_col="id",
        ts_col="when",
        kwh_col="e",
        interval=60,
    )
    q = rep.tables["interval_reads"].quarantined
    assert q == {"duplicate meter_id/ts": 1, NOT_ALIGNED: 1, "kwh below 0": 1}
    reads = read_table(tmp_path / "ds", "interval_reads").sort_by("ts")
    assert reads.num_rows == 24
    assert reads.column("kwh")[2].as_py() == pytest.approx(2.0)


def test_csv_dst_fall_back_and_spring_gap(tmp_path: Path) -> None:
    # Europe/London: 2024-10-27 01:00-02:00 happens twice, 2024-03-31 01:00-02:00 never.
    rows = [
        "meter_id,timestamp,kwh",
        "m,2024-10-27 00:30:00,1",
        "m,2024-10-27 01:00:00,1",
        "m,2024-10-27 01:30:00,1",
        "m,2024-10-27 01:00:00,2",
        "m,2024-10-27 01:30:00,2",
        "m,2024-10-27 02:00:00,1",
        "m,2024-03-31 01:30:00,1",
    ]
    rep = run_import(
        "csv", [_csv(tmp_path, "\n".join(rows))], tmp_path / "ds", tz="Europe/London", interval=30
    )
    assert rep.tables["interval_reads"].quarantined == {"nonexistent local time (DST gap)": 1}
    ts = read_table(tmp_path / "ds", "interval_reads").sort_by("ts").column("ts").to_pylist()
    assert len(ts) == 6 and len(set(ts)) == 6
    assert ts[1] == datetime(2024, 10, 27, 0, 0, tzinfo=UTC)  # 01:00 BST
    assert ts[3] == datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 01:00 GMT


def test_parquet_and_idempotent_reimport(tmp_path: Path) -> None:
    ts = pa.array(
        [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(10)], pa.timestamp("us", "UTC")
    )
    p = tmp_path / "r.parquet"
    pq.write_table(pa.table({"meter_id": ["a"] * 10, "timestamp": ts, "kwh": [0.5] * 10}), p)
    for _ in range(2):
        run_import("parquet", [p], tmp_path / "ds")
    assert read_table(tmp_path / "ds", "interval_reads").num_rows == 10
    assert read_table(tmp_path / "ds", "meters").column("interval_minutes").to_pylist() == [60]


def test_overlap_with_another_file_is_quarantined(tmp_path: Path) -> None:
    a = _csv(tmp_path, "meter_id,timestamp,kwh\nm,2024-01-01 00:00:00,1\n", "a.csv")
    b = _csv(tmp_path, "meter_id,timestamp,kwh\nm,2024-01-01 00:00:00,2\n", "b.csv")
    run_import("csv", [a], tmp_path / "ds", interval=30)
    rep = run_import("csv", [b], tmp_path / "ds", interval=30)
    assert rep.tables["interval_reads"].quarantined == {"key already loaded from another file": 1}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"meter_id,timestamp,kwh\nm\xe9ter,2024-01-01,1\n", "UTF-8"),
        (b'<?xml version="1.0"?><feed/>', "CSV"),
        (b"meter_id,timestamp,kwh\nm,yesterday,1\n", "unparseable timestamps"),
    ],
    ids=["empty", "non-utf8", "xml-file", "bad-timestamp"],
)
def test_broken_csv_raises_clear_errors(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(DataError, match=match):
        run_import("csv", [p], tmp_path / "ds")
    assert not (tmp_path / "ds" / "interval_reads").exists()


def test_check_interval_reads_counts_gaps_and_sorts() -> None:
    ts = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (3, 0, 1, 5)]
    t = pa.table(
        {"meter_id": ["m"] * 4, "ts": pa.array(ts, pa.timestamp("us", "UTC")), "kwh": [1.0] * 4}
    )
    res = check_interval_reads(t, {"m": 60})
    assert res.good.column("ts").to_pylist() == sorted(ts)
    assert res.notes["missing intervals (gaps)"] == 2  # 02:00 and 04:00
    assert res.notes["reads not in time order (sorted)"] > 0


def test_validate_first_reason_first_duplicate_kept_order_preserved() -> None:
    from features.schema import INTERVAL_READS
    from features.tables import conform, validate

    h = [datetime(2024, 1, 1, i, tzinfo=UTC) for i in range(4)]
    t = conform(
        INTERVAL_READS,
        pa.table(
            {
                "meter_id": ["b", "a", "b", "a", None, "b", "a"],
                "ts": pa.array(
                    [h[1], h[0], h[1], h[0], h[2], h[0], h[3]], pa.timestamp("us", "UTC")
                ),
                "kwh": [1.0, -1.0, 2.0, float("nan"), 1.0, 3.0, 4.0],
            }
        ),
    )
    res = validate(INTERVAL_READS, t)
    assert res.good.column("kwh").to_pylist() == [1.0, 3.0, 4.0]  # input order kept
    assert res.rejected.column("reason").to_pylist() == [
        "kwh below 0",  # a/h0 first seen here, rejected for its value
        "duplicate meter_id/ts",  # b/h1 again: the first occurrence is kept
        "non-finite kwh",  # first failing check wins over the duplicate
        "missing meter_id",
    ]
