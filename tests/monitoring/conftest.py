"""A registered model with a training reference, its prediction log, and a webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.monitoring.synthetic import traffic

MODEL = "churn_mon"
KEY = b"monitoring-test-key-0123456789"
NUMERIC = ["usage_kwh", "bill", "tenure", "contacts"]


@dataclass
class Monitored:
    settings: Any
    root: Path  # prediction log root
    now: datetime  # end of the shifted (second) week; the first week ends 7 days before
    weeks: dict[str, pd.DataFrame]  # "quiet" and "shifted" traffic with customer ids


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    """``churn_mon`` v1 (logistic regression) with its reference; two weeks of logged traffic.

    Module-scoped (MLflow's first database set-up is slow); each test gets its own reports
    folder through the ``reports`` fixture.
    """
    import mlflow

    mp = pytest.MonkeyPatch()
    try:
        yield _monitored(tmp_path_factory.mktemp("monitored"), mp)
    finally:
        mp.undo()
        mlflow.set_tracking_uri(None)


@pytest.fixture()
def reports(monitored: Monitored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh reports folder for one test."""
    monkeypatch.setenv("WATTWISE_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path / "reports"


def _monitored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Monitored:
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from serving.predlog import PredictionLog, PredictionRecord
    from training import tracking
    from training.reference import build_reference, log_reference
    from wattwise.settings import load_settings

    monkeypatch.setenv("WATTWISE_PATHS__MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.setenv("WATTWISE_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    monkeypatch.setenv("WATTWISE_MLFLOW__ARTIFACT_ROOT", str(tmp_path / "mlruns" / "artifacts"))
    monkeypatch.setenv("WATTWISE_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WATTWISE_PATHS__REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("WW_PREDLOG_KEY", KEY.decode())
    settings = load_settings()
    tracking.setup(settings)
    tracking.experiment(settings, MODEL)
    train = traffic(4000, 0)
    rng = np.random.default_rng(0)
    y = rng.random(len(train)) < train["prediction"]
    model = LogisticRegression(max_iter=500).fit(train[NUMERIC], y)
    p = model.predict_proba(train[NUMERIC])[:, 1]
    with mlflow.start_run() as run:
        mlflow.log_metrics(
            {
                "test_roc_auc": roc_auc_score(y, p),
                "test_pr_auc": average_precision_score(y, p),
                "test_brier": brier_score_loss(y, p),
            }
        )
        log_reference(build_reference(train.drop(columns="prediction"), p, 3000, 0))
    # monitoring reads the version's run (reference, test metrics), never the model itself,
    # so the version points at the run's reference folder instead of a logged model (fast)
    client = mlflow.MlflowClient()
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, f"{run.info.artifact_uri}/reference", run.info.run_id)

    now = datetime.now(UTC).replace(microsecond=0)
    weeks = {"quiet": traffic(1500, 1), "shifted": traffic(1500, 2, shift=0.6, tariff_p=0.6)}
    root = settings.data_dir / "predlog"
    with PredictionLog(root, KEY) as plog:
        for i, week in enumerate(weeks.values()):
            week["customer_id"] = [f"C{i}{j:05d}" for j in range(len(week))]
            week["prediction"] = model.predict_proba(week[NUMERIC])[:, 1]
            end = now - timedelta(days=7 * (1 - i))
            ts = [
                end - timedelta(seconds=float(s)) for s in rng.uniform(1, 7 * 86400 - 1, len(week))
            ]
            week["ts"] = ts
            feats = week.drop(columns=["customer_id", "prediction", "ts"]).to_dict("records")
            plog.append(
                [
                    PredictionRecord(uuid.uuid4().hex, t, MODEL, "1", c, float(pr), f)
                    for t, c, pr, f in zip(
                        ts, week["customer_id"], week["prediction"], feats, strict=True
                    )
                ]
            )
    return Monitored(settings, root, now, weeks)


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        n = int(self.headers.get("Content-Length", 0))
        self.server.received.append(json.loads(self.rfile.read(n)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
