"""`wattwise drift report/watch/performance` end to end: real MLflow, prediction log, webhook."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from serving.monitoring.reports import read_summaries
from tests.monitoring.conftest import MODEL, Monitored
from wattwise.app.cli import main

pytestmark = pytest.mark.integration


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def config(tmp: Path, **over: Any) -> Path:
    p = tmp / "monitoring.yaml"
    p.write_text(yaml.safe_dump(over))
    return p


def test_report_quiet_week_then_shifted_week_alerts(
    monitored: Monitored, reports: Path, webhook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, received = webhook
    cfg = config(tmp_path, alerts={"webhook_url": url, "retries": 0})
    quiet_end = (monitored.now - timedelta(days=7)).isoformat()
    assert (
        cli(
            "drift",
            "report",
            MODEL,
            "--window",
            "7d",
            "--end",
            quiet_end,
            "--monitoring-config",
            str(cfg),
        )
        == 0
    )
    assert received == []
    assert (
        cli(
            "drift",
            "report",
            MODEL,
            "--window",
            "7d",
            "--end",
            monitored.now.isoformat(),
            "--monitoring-config",
            str(cfg),
        )
        == 3
    )

    # the webhook got one alert naming the model, the version and why
    assert len(received) == 1 and received[0]["kind"] == "drift"
    assert received[0]["model"] == MODEL and received[0]["version"] == "1"
    assert "usage_kwh" in received[0]["drifted_features"]
    assert any("prediction drifted" in r for r in received[0]["reasons"])

    found = read_summaries(reports)
    assert [s.status for _, s in found] == ["drift", "ok"]  # newest first
    assert all((folder / "report.html").stat().st_size > 10_000 for folder, _ in found)
    assert found[0][1].rows_current == 1500 and found[0][1].segments  # region, tariff segments
    index = (reports / "index.html").read_text()
    assert index.count("<tr class=") == 2 and 'class="drift"' in index and 'class="ok"' in index

    # logged to MLflow against the version
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(experiment_names=["wattwise/monitoring"], output_format="list")
    assert {r.data.tags["monitoring.status"] for r in runs} >= {"ok", "drift"}
    assert all(r.data.tags["wattwise.model_version"] == "1" for r in runs)
    assert client.get_model_version(MODEL, "1").tags["drift.last_status"] == "drift"


def test_report_errors_are_one_line(
    monitored: Monitored, reports: Path, tmp_path: Path, capsys: Any
) -> None:
    early = (monitored.now - timedelta(days=30)).isoformat()
    assert (  # no traffic in the window: nothing to report, not a success (exit 4)
        cli("drift", "report", MODEL, "--end", early, "--monitoring-config", str(config(tmp_path)))
        == 4
    )
    assert "no predictions of 'churn_mon'" in capsys.readouterr().err
    assert cli("drift", "report", MODEL, "--window", "7 days") == 2
    assert (
        cli(
            "drift", "report", MODEL, "--version", "9", "--monitoring-config", str(config(tmp_path))
        )
        == 2
    )
    assert "served nothing" in capsys.readouterr().err


def test_watch_once_reports_every_model_and_skips_the_silent(
    monitored: Monitored, reports: Path, tmp_path: Path
) -> None:
    cfg = config(tmp_path, watch={"models": ["silent_model", MODEL], "window": "7d", "every": "1h"})
    assert cli("drift", "watch", "--once", "--monitoring-config", str(cfg)) == 3
    found = read_summaries(reports)
    assert [(s.model_name, s.status) for _, s in found] == [(MODEL, "drift")]


def test_performance_against_training_metrics(
    monitored: Monitored, tmp_path: Path, capsys: Any
) -> None:
    rng = np.random.default_rng(3)
    frames = []
    for name, week in monitored.weeks.items():
        y = (rng.random(len(week)) < week["prediction"]).astype(int)
        if name == "shifted":  # the model has gone wrong: outcomes no longer follow it
            y = rng.permutation(y)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": week["customer_id"],
                    "label": y,
                    "ts": week["ts"] + timedelta(days=1),
                }
            )
        )
    good, bad = tmp_path / "good.csv", tmp_path / "all.csv"
    frames[0].to_csv(good, index=False)
    pd.concat(frames).to_csv(bad, index=False)
    cfg = str(config(tmp_path, performance={"period": "W", "min_labels": 100}))
    assert (
        cli("drift", "performance", MODEL, "--labels", str(good), "--monitoring-config", cfg) == 0
    )
    out = capsys.readouterr().out
    assert "roc_auc" in out and "ALERT" not in out
    assert cli("drift", "performance", MODEL, "--labels", str(bad), "--monitoring-config", cfg) == 3
    out = capsys.readouterr().out
    assert "ALERT" in out and "roc_auc" in out and "below training" in out


def test_a_window_too_small_for_a_report_is_not_success(
    monitored: Monitored, reports: Path, tmp_path: Path, capsys: Any
) -> None:
    """A scheduler read "INSUFFICIENT ... exit 0" as "no drift": it is exit 4 now."""
    cfg = str(config(tmp_path))
    end = monitored.now.isoformat()
    args = ("drift", "report", MODEL, "--window", "1h", "--end", end, "--monitoring-config", cfg)
    assert cli(*args) == 4
    out = capsys.readouterr()
    assert "INSUFFICIENT" in out.out.upper() and "too few predictions" in out.err
    assert cli(*args, "--allow-empty") == 0
