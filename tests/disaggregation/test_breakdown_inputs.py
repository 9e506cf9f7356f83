"""The checks and the reads of a breakdown, without a model: times (naive is UTC, the years
meter data can have), readings, a customer's period read in UTC whatever the machine's zone,
only the months' partitions read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from training.disaggregation import service
from training.disaggregation.service import BreakdownError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value",
    ["2024-07-01", "2024-07-01T00:00:00", "2024-07-01T00:00:00Z", datetime(2024, 7, 1)],
)
def test_a_time_without_a_zone_is_utc(value: object) -> None:
    assert service.as_utc(value, "start") == pd.Timestamp("2024-07-01", tz="UTC")  # type: ignore[arg-type]


def test_a_time_with_a_zone_is_that_instant() -> None:
    pst = timezone(timedelta(hours=-8))
    assert service.as_utc(datetime(2024, 7, 1, tzinfo=pst), "start") == pd.Timestamp(
        "2024-07-01T08:00", tz="UTC"
    )
    lo, hi = service.window(datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 8, 1))  # mixed
    assert (lo, hi) == service.month_window("2024-07")


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01",
        "1600-07-01T00:00:00Z",
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-8))),  # after 9999 in UTC
        "2262-05-01",  # after pandas' last nanosecond time
        "July",
        "",
    ],
)
def test_a_time_out_of_range_names_the_field(value: object) -> None:
    with pytest.raises(BreakdownError, match="years 1900-2200") as exc:
        service.as_utc(value, "end")  # type: ignore[arg-type]
    assert exc.value.field == "end" and exc.value.status == 422


def test_end_must_follow_start_and_a_month_is_a_utc_calendar_month() -> None:
    with pytest.raises(BreakdownError) as exc:
        service.window("2024-08-01", "2024-07-01")
    assert exc.value.field == "end"
    assert service.month_window("2024-02-10") == (
        pd.Timestamp("2024-02-01", tz="UTC"),
        pd.Timestamp("2024-03-01", tz="UTC"),
    )
    with pytest.raises(BreakdownError, match="YYYY-MM"):
        service.month_window("July")


def test_readings_are_checked_field_by_field_and_put_on_their_grid() -> None:
    ts = pd.date_range("2024-07-01", periods=6, freq="15min", tz="UTC")
    r = service.parse_readings(list(ts[::-1]), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 30)
    assert r.step_minutes == 15 and r.start == ts[0] and r.end == ts[-1] + pd.Timedelta("15min")
    np.testing.assert_allclose(r.kwh, [0.6, 0.5, 0.4, 0.3, 0.2, 0.1])  # sorted by time
    s = service.readings_series(service.parse_readings([ts[0], ts[3]], [0.25, 0.5], 30))
    assert s.interval_minutes == 45 and s.power_w.shape == (1, 2)
    assert service.parse_readings([ts[0]], [0.25], 30).step_minutes == 30  # one: the model's
    for i, v, field in ((2, 1e300, "readings[2].kwh"), (4, -0.5, "readings[4].kwh")):
        kwh = [0.1] * 6
        kwh[i] = v
        with pytest.raises(BreakdownError) as exc:
            service.parse_readings(list(ts), kwh, 30)
        assert exc.value.field == field and "0 to 1000" in exc.value.message
    with pytest.raises(BreakdownError) as exc:
        service.parse_readings([ts[0], ts[1], ts[1]], [0.1] * 3, 30)
    assert exc.value.field == "readings[2].ts"
    with pytest.raises(BreakdownError) as exc:
        service.parse_readings([ts[0], ts[0] + pd.Timedelta(seconds=90)], [0.1] * 2, 30)
    assert exc.value.field == "readings" and "whole minutes" in exc.value.message


def tiny_dataset(root: Path) -> Path:
    """Two meters of one customer each, 30-min reads from 2024-06-01 to 2024-09-01 (UTC)."""
    from features.tables import write_table

    ds = root / "ds"
    ts = pd.date_range("2024-06-01", "2024-09-01", freq="30min", tz="UTC", inclusive="left")
    write_table(
        ds,
        "meters",
        pa.table(
            {
                "meter_id": ["M1", "M2"],
                "customer_id": ["C0000001", "C0000002"],
                "service_kind": ["electric", "electric"],
                "interval_minutes": pa.array([30, 30], pa.int16()),
                "timezone": ["Etc/GMT+8", "Etc/GMT+8"],
            }
        ),
    )
    n = len(ts)
    write_table(
        ds,
        "interval_reads",
        pa.table(
            {
                "meter_id": ["M1"] * n + ["M2"] * n,
                "ts": pa.array(list(ts) * 2, pa.timestamp("us", tz="UTC")),
                "kwh": pa.array(np.r_[np.full(n, 0.5), np.full(n, 1.0)], pa.float32()),
            }
        ),
    )
    return ds


def test_a_customer_month_is_read_in_utc_whatever_the_machines_zone(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path)
    code = f"""
import json
from pathlib import Path
from training.disaggregation import service
from training.disaggregation.data import load_series
ds = Path({str(ds)!r})
lo, hi = service.month_window("2024-07")
p = service.locate(ds, "C0000001", lo, hi)
s = load_series(ds, [p.meter_id], lo, hi)
print(json.dumps({{"n": service.count_reads(ds, p.meter_id, lo, hi), "t0": str(s.ts[0]),
                  "finite": int((s.power_w == s.power_w).sum())}}))
"""
    env = {**os.environ, "TZ": "America/New_York", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"n": 31 * 48, "t0": "2024-07-01 00:00:00+00:00", "finite": 31 * 48}


def test_a_period_reads_only_its_months_partitions(tmp_path: Path) -> None:
    from training.disaggregation.data import reads_source

    ds = tiny_dataset(tmp_path)
    lo, hi = service.month_window("2024-08")
    src = reads_source(ds, lo, hi)
    assert "month=2024-07" in src and "month=2024-08" in src and "month=2024-06" not in src
    assert "month=" not in reads_source(ds)  # no period: every file
    assert service.count_reads(ds, "M1", *service.month_window("2031-01")) == 0
    with pytest.raises(BreakdownError) as exc:
        service.locate(ds, "C0000001", *service.month_window("2031-01"))
    assert exc.value.status == 404 and exc.value.field == "start"
    assert "2024-06-01 to 2024-08-31" in str(exc.value)
    with pytest.raises(BreakdownError) as exc:
        service.locate(ds, "C000001", lo, hi)
    assert exc.value.field == "customer_id" and exc.value.status == 404
    assert "'C000001'" in exc.value.message and str(ds) not in exc.value.message  # for an API
    assert "'C0000001' (C + 7 digits)" in str(exc.value)  # for the command line
