"""The prediction log contract (monitoring reads it): records, pseudonymised ids, time ranges."""

from __future__ import annotations

import json
import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from serving.predlog import PredictionLog, PredictionRecord, pseudonymize, read_predictions
from wattwise.errors import ConfigError, DataError

KEY = b"k" * 32
T0 = datetime(2026, 3, 1, 23, 59, 0, tzinfo=UTC)


def rec(
    i: int, ts: datetime, model: str = "churn", **features: float | str | None
) -> PredictionRecord:
    return PredictionRecord(f"r{i}", ts, model, "3", f"C{i:07d}", i / 10, dict(features))


def test_round_trip_columns_types_and_pseudonymised_ids(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, KEY) as log:
        log.append(
            [
                rec(1, T0, a=1.0, tariff="tou", c=None),
                rec(2, T0 + timedelta(minutes=2), a=float("nan"), tariff=None, c=2.0),
            ]
        )
        log.append([rec(3, T0, model="propensity", a=0.5, program="paperless")])
    df = read_predictions(tmp_path, "churn")
    assert list(df.columns[:6]) == [
        "request_id",
        "ts",
        "model_name",
        "model_version",
        "customer_key",
        "prediction",
    ]
    assert str(df.ts.dtype) == "datetime64[ns, UTC]" and df.prediction.dtype == np.float64
    assert df.request_id.tolist() == ["r1", "r2"] and set(df.columns[6:]) == {"a", "tariff", "c"}
    assert df.a.iloc[0] == 1.0 and np.isnan(df.a.iloc[1])  # NaN stored as null, read as missing
    assert df.tariff.tolist() == ["tou", None]
    assert (
        df.customer_key.iloc[0]
        == pseudonymize(KEY, "C0000001")
        != pseudonymize(b"x" * 32, "C0000001")
    )
    assert len(df.customer_key.iloc[0]) >= 16
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.jsonl"))
    assert b"C0000001" not in raw and b"C0000003" not in raw  # never the raw id
    prop = read_predictions(tmp_path, "propensity")
    assert prop.program.tolist() == ["paperless"] and prop.model_name.tolist() == ["propensity"]


def test_time_range_spans_days_and_is_half_open(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, KEY)
    log.append([rec(i, T0 + timedelta(minutes=i)) for i in range(4)])  # crosses midnight
    assert len(list((tmp_path / "churn").glob("*.jsonl"))) == 2  # one segment per UTC day
    got = read_predictions(
        tmp_path, "churn", start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3)
    )
    assert got.request_id.tolist() == ["r1", "r2"]
    assert read_predictions(tmp_path, "churn", start=T0 + timedelta(days=2)).empty
    assert read_predictions(tmp_path, "nothing").empty


def test_torn_last_line_is_skipped_and_bad_input_refused(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, KEY)
    log.append([rec(1, T0)])
    seg = next((tmp_path / "churn").glob("*.jsonl"))
    with seg.open("ab") as f:
        f.write(json.dumps({"request_id": "torn"}).encode()[:10])  # a write cut short
    assert read_predictions(tmp_path, "churn").request_id.tolist() == ["r1"]
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        PredictionLog(tmp_path, b"short")
    with pytest.raises(DataError, match="timezone-aware"):
        log.append([rec(2, datetime(2026, 3, 1))])


def _writer(root: str, n: int, start: int) -> None:
    log = PredictionLog(Path(root), KEY)
    for i in range(start, start + n):
        log.append([rec(i, T0, x=float(i))])


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 200, k * 1000)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    df = read_predictions(tmp_path, "churn")
    assert len(df) == 400 and df.request_id.is_unique
    assert np.allclose(df.x.to_numpy(), df.prediction.to_numpy() * 10)
