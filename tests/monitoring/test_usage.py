"""The usage view: the window's interval reads against the same customers' previous windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from serving.monitoring.config import MonitoringConfig, UsageConfig
from serving.monitoring.drift import DriftSummary, compute_drift, redecide
from serving.monitoring.reports import read_summaries
from serving.monitoring.usage import period_usage, usage_check, window_usage
from tests.monitoring.conftest import MODEL, Monitored
from tests.monitoring.synthetic import reference, traffic
from tests.monitoring.test_report_cli import cli
from wattwise.errors import DataError

END = datetime(2024, 7, 8, tzinfo=UTC)  # the window is the week before
WEEK = timedelta(days=7)
CFG = UsageConfig(baseline=3, min_flagged=3)
N = 200


def write_dataset(
    root: Path,
    *,
    stuck: int = 0,
    times_ten: int = 0,
    level: float = 1.0,
    ev: int = 0,
    drop: float = 0.0,
    seed: int = 0,
    end: datetime = END,
) -> Path:
    """Four weeks of half-hourly reads of N homes; the last week changed as asked.

    ``stuck`` meters read 0 and ``times_ten`` read 10x from 3 days before the end; ``level``
    multiplies every read of the last week; ``ev`` homes charge 7.2 kW 19:00-21:00 every
    evening of the last week; ``drop`` removes that share of the last week's reads.
    """
    rng = np.random.default_rng(seed)
    ts = pd.date_range(end - 4 * WEEK, end, freq="30min", inclusive="left")
    hours = ts.hour.to_numpy() + 8  # local = UTC+8 ("Etc/GMT-8")
    base = rng.gamma(4.0, 0.06, N)[:, None]
    profile = 1 + 0.6 * np.sin(2 * np.pi * (hours - 12) / 24)
    trend = 1 + 0.01 * np.arange(len(ts)) / 336  # +1 % a week: the season moving on
    kwh = base * profile[None, :] * trend[None, :] * rng.uniform(0.7, 1.3, (N, len(ts)))
    last = ts >= end - WEEK
    kwh[:, last] *= level
    late = ts >= end - timedelta(days=3)
    kwh[:stuck, late] = 0.0
    kwh[stuck : stuck + times_ten, late] *= 10
    evening = last & (((hours % 24) >= 19) & ((hours % 24) < 21))
    kwh[N - ev :, evening] += 3.6  # 7.2 kW for half an hour
    keep = ~(last[None, :] & (rng.random((N, len(ts))) < drop))
    ids = np.repeat([f"M{i:04d}" for i in range(N)], len(ts))
    reads = pd.DataFrame(
        {"meter_id": ids, "ts": np.tile(ts, N), "kwh": kwh.ravel().astype("float32")}
    )[keep.ravel()]
    reads["month"] = np.tile(ts.strftime("%Y-%m").to_numpy(), N)[keep.ravel()]
    for month, part in reads.groupby("month"):
        d = root / "interval_reads" / f"month={month}"
        d.mkdir(parents=True, exist_ok=True)
        part.drop(columns="month").to_parquet(d / "part-0.parquet", index=False)
    (root / "meters").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "meter_id": [f"M{i:04d}" for i in range(N)] + ["G0000"],
            "customer_id": [f"C{i:04d}" for i in range(N)] + ["C0000"],
            "service_kind": ["electric"] * N + ["gas"],
            "interval_minutes": np.array([30] * (N + 1), dtype="int16"),
            "timezone": ["Etc/GMT-8"] * (N + 1),
        }
    ).to_parquet(root / "meters" / "part-0.parquet", index=False)
    return root


def check(tmp_path: Path, **kw: float) -> list[str]:
    return window_usage(write_dataset(tmp_path / "ds", **kw), END, WEEK, CFG).reasons  # type: ignore[arg-type]


def test_an_ordinary_same_season_week_is_quiet(tmp_path: Path) -> None:
    ds = write_dataset(tmp_path / "ds")
    per = period_usage(ds, END, WEEK, 4, CFG)
    assert sorted(per["period"].unique()) == [-4, -3, -2, -1]
    assert per["customer_id"].nunique() == N  # the gas meter is not usage
    assert (per["reads"] == 336).all() and (per["expected"] == 336).all()
    chk = usage_check(per, CFG)
    assert chk.customers == N and chk.reasons == [], chk.reasons
    assert chk.median_ratio == pytest.approx(1.02, abs=0.02)  # the season moving on, not drift
    assert chk.jump_customers == 0 and chk.new_high_customers == 0


def test_broken_meters_trigger_the_jump_rule(tmp_path: Path) -> None:
    reasons = check(tmp_path, stuck=3, times_ten=3)
    assert reasons[0].startswith("meters jumped or stuck: 6 customers"), reasons
    # the 10x meters also look like new big evening loads; the level of the median is intact
    assert not [r for r in reasons if r.startswith(("usage level", "reads missing"))]


def test_stuck_meters_alone_are_caught_by_their_zero_days(tmp_path: Path) -> None:
    chk = window_usage(write_dataset(tmp_path / "ds", stuck=4), END, WEEK, CFG)
    assert chk.jump_customers == 4  # their weekly level fell by 3/7 only: the zero days tell
    assert chk.reasons and "stuck" in chk.reasons[0]


def test_missing_reads_rule(tmp_path: Path) -> None:
    chk = window_usage(write_dataset(tmp_path / "ds", drop=0.2), END, WEEK, CFG)
    assert chk.missing_baseline == 0 and chk.missing_current == pytest.approx(0.2, abs=0.01)
    assert [r for r in chk.reasons if r.startswith("reads missing: 0.0% -> ")], chk.reasons


def test_level_rule_and_new_evening_loads(tmp_path: Path) -> None:
    assert any(
        r.startswith("usage level up: median customer uses +3")
        for r in check(tmp_path / "hot", level=1.3)
    )
    reasons = check(tmp_path / "ev", ev=8)
    assert reasons and reasons[0].startswith("new high evening loads: 8 customers"), reasons


def test_limits_come_from_the_config_and_redecide_keeps_the_usage_view(tmp_path: Path) -> None:
    ds = write_dataset(tmp_path / "ds", stuck=3, times_ten=3)
    chk = window_usage(ds, END, WEEK, CFG)
    s = compute_drift(reference(), traffic(500, 1), MonitoringConfig(), segments=False)
    s = s.with_usage(chk)
    assert s.status == "drift" and "usage view: meters jumped" in " ".join(s.reasons)
    back = DriftSummary.from_dict(s.to_dict())
    assert back.usage == chk and back.status == "drift"
    lenient = MonitoringConfig(usage=replace_usage(jump_share_max=0.5, new_high_share_max=0.5))
    assert redecide(back, lenient).status == "ok"
    assert redecide(back, MonitoringConfig(usage=CFG)).status == "drift"
    assert "usage view" in back.render()


def replace_usage(**kw: float) -> UsageConfig:
    return CFG.model_copy(update=kw)


def test_usage_view_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="interval_reads"):
        window_usage(tmp_path, END, WEEK, CFG)
    with pytest.raises(ValueError, match="hours"):
        UsageConfig.model_validate({"evening_hours": [17, 17]})


@pytest.mark.integration
def test_drift_report_runs_the_usage_view_when_a_dataset_is_set(
    monitored: Monitored, reports: Path, tmp_path: Path
) -> None:
    """The quiet week of traffic, but its reads show broken meters: the report alerts."""
    end = monitored.now - WEEK
    ds = write_dataset(tmp_path / "ds", stuck=3, times_ten=3, end=end)
    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(yaml.safe_dump({"usage": {"dataset": str(ds), "baseline": 3}}))
    args = ["drift", "report", MODEL, "--window", "7d", "--end", end.isoformat()]
    assert cli(*args, "--monitoring-config", str(cfg)) == 3
    (_, s), *_ = read_summaries(reports)
    assert s.usage is not None and s.usage.jump_customers == 6 and s.usage.customers == N
    assert any(r.startswith("usage view: meters jumped") for r in s.reasons)
    assert not [r for r in s.reasons if not r.startswith("usage view")]  # the traffic is quiet


@pytest.mark.integration
def test_the_usage_dataset_is_named_from_the_environment(
    monitored: Monitored, reports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `WATTWISE_MONITORING_USAGE__DATASET=<dataset>`: a dataset name under the
    data dir (it was read as a path from the project root, and the variable broke the
    settings loader of every command)."""
    import os

    end = monitored.now - WEEK
    write_dataset(Path(os.environ["WATTWISE_PATHS__DATA_DIR"]) / "meters_x", stuck=3, end=end)
    monkeypatch.setenv("WATTWISE_MONITORING_USAGE__DATASET", "meters_x")
    args = ["drift", "report", MODEL, "--window", "7d", "--end", end.isoformat()]
    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(yaml.safe_dump({"usage": {"baseline": 3}}))  # no dataset in the file
    assert cli(*args, "--monitoring-config", str(cfg)) == 3
    (_, s), *_ = read_summaries(reports)
    assert s.usage is not None and s.usage.customers == N
