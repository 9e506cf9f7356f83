"""The demo's last step on a really trained, registered churn model (tiny training set)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from wattwise.settings import Settings, load_settings

pytestmark = [pytest.mark.integration]


def churn_set(n: int, seed: int) -> pd.DataFrame:
    """Customers × 6 monthly snapshots; churn driven by the tariff cost and satisfaction."""
    rng = np.random.default_rng(seed)
    snaps = pd.date_range("2024-02-01", periods=6, freq="MS", tz="UTC")
    cust = np.repeat([f"C{i:05d}" for i in range(n)], len(snaps))
    cost = rng.gamma(9.0, 120.0, len(cust))
    sat = rng.normal(7, 2, len(cust))
    logit = -3.0 + 0.002 * (cost - 1000) - 0.3 * (sat - 7)
    return pd.DataFrame(
        {
            "customer_id": cust,
            "event_timestamp": np.tile(snaps, n),
            "rate_cost_12m_flat": cost,
            "rate_current_cost_12m": cost * rng.uniform(0.9, 1.1, len(cust)),
            "eng_last_satisfaction": sat,
            "churned": rng.random(len(cust)) < 1 / (1 + np.exp(-logit)),
        }
    )


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WATTWISE_HOME", str(tmp_path))
    (tmp_path / "settings.yaml").write_text("seed: 1\n")
    yield load_settings(tmp_path / "settings.yaml")
    mlflow.set_tracking_uri(None)


def test_shifted_week_report_flags_the_price_rise(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.monitoring.config import load_monitoring_config
    from serving.monitoring.demo import shifted_week_report
    from training.config import load_model_config
    from training.pipeline import train
    from training.reference import load_reference

    cfg = load_model_config(
        Path(__file__).resolve().parents[2] / "configs" / "models" / "churn.yaml",  # repo's
        registered_name="churn",
        tuning={"trials": 1, "timeout_s": 60},
        estimator={"n_estimators": 40},
    )
    data = churn_set(1000, 1)  # customer-disjoint splits: the last test snapshot has ~160 rows
    r = train(cfg, settings, dataset_dir=settings.data_dir / "x", data=data)
    # the training pipeline logged the version's reference (training/reference.py)
    ref = load_reference("churn", r.version)
    assert len(ref) > 100 and "prediction" in ref and "rate_cost_12m_flat" in ref
    repo_configs = Path(__file__).resolve().parents[2] / "configs"
    monkeypatch.setenv("WW_SERVING_CONFIG", str(repo_configs / "serving.yaml"))
    html = shifted_week_report(
        settings, cfg=load_monitoring_config(repo_configs / "monitoring.yaml")
    )
    assert html.name == "report.html" and html.stat().st_size > 10_000
    summary = json.loads((html.parent / "summary.json").read_text())
    assert summary["status"] == "drift" and summary["model_version"] == r.version
    drifted = {f["column"] for f in summary["features"] if f["drifted"]}
    assert {"rate_cost_12m_flat", "rate_current_cost_12m"} <= drifted
    assert "eng_last_satisfaction" not in drifted
    assert (settings.reports_dir / "index.html").is_file()
    # the demo's week is in the log that the service writes and `drift report` reads: the
    # command a user runs next gives the same answer (drift: exit 3), not "insufficient"
    assert (settings.data_dir / "predlog" / "churn").is_dir()
    from wattwise.app.cli import main
    from wattwise.errors import EXIT_ALERT

    with pytest.raises(SystemExit) as done:
        main(
            [
                "--settings",
                str(settings.root / "settings.yaml"),
                "drift",
                "report",
                "churn",
                "--window",
                "7d",
                "--no-html",
                "--monitoring-config",
                str(repo_configs / "monitoring.yaml"),
            ]
        )
    assert done.value.code == EXIT_ALERT
