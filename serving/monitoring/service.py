"""Drift reports and performance checks for a registered model: the functions the CLI wires.

A report reads one window of the prediction log (``serving.predlog``), the version's training
reference (``training.reference``), computes the typed drift summary, writes the Evidently
HTML and the JSON summary under ``<reports_dir>/drift/``, rebuilds the index page, logs the
results to MLflow against the model version and alerts when drift is found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from serving.monitoring import reports
from serving.monitoring.alerts import send_alert
from serving.monitoring.config import MonitoringConfig, parse_duration
from serving.monitoring.drift import DriftSummary, compute_drift, render_html
from wattwise.errors import DataError, EmptyResultError

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


class NoPredictionsError(EmptyResultError, DataError):
    """A window without any logged prediction: nothing to report (exit 4, as a window with
    too few), and still a :class:`DataError` for callers that skip such a model."""


@dataclass
class ReportOutcome:
    summary: DriftSummary
    folder: Path
    html: Path | None
    json: Path
    index: Path
    mlflow_run_id: str | None
    alerted: bool


def predlog_root(settings: Settings, cfg: MonitoringConfig) -> Path:
    from serving.predlog import default_root

    return settings.path(cfg.predlog_root) if cfg.predlog_root else default_root(settings.data_dir)


def load_window(
    root: Path, model: str, end: datetime, window: timedelta, version: str | None
) -> tuple[pd.DataFrame, str]:
    """The window's predictions of one version (default: the version that served last)."""
    from serving.predlog import read_predictions

    df = read_predictions(root, model, end - window, end)
    if df.empty:
        raise NoPredictionsError(
            f"no predictions of {model!r} in {root} between {end - window:%Y-%m-%d %H:%M} "
            f"and {end:%Y-%m-%d %H:%M} UTC"
        )
    if version is None:
        version = str(df["model_version"].iloc[-1])
    sel = df[df["model_version"].astype(str) == str(version)]
    if sel.empty:
        served = sorted(df["model_version"].astype(str).unique())
        raise DataError(f"{model} v{version} served nothing in the window (served: {served})")
    return sel.reset_index(drop=True), str(version)


def _mlflow_log(
    settings: Settings,
    cfg: MonitoringConfig,
    registered: str,
    s: DriftSummary,
    files: list[Path],
) -> str | None:
    """One run per report in ``<prefix>/monitoring``; tags on the model version."""
    import mlflow

    from training import tracking

    client = tracking.setup(settings)
    tracking.experiment(settings, cfg.mlflow_experiment)
    step_ms = int(pd.Timestamp(s.window_end or s.created_at).timestamp() * 1000)
    with mlflow.start_run(run_name=f"drift-{registered}-v{s.model_version}") as run:
        mlflow.set_tags(
            {
                "wattwise.model": registered,
                "wattwise.model_version": s.model_version,
                "monitoring.kind": "drift",
                "monitoring.status": s.status,
                "window": f"{s.window_start}..{s.window_end}",
            }
        )
        metrics = {
            "drift_found": float(s.drift_found),
            "drifted_share": s.drifted_share,
            "drifted_features": float(len(s.drifted_features)),
            "rows_current": float(s.rows_current),
        }
        if s.prediction is not None and s.prediction.score is not None:
            metrics["prediction_drift_score"] = s.prediction.score
        u = s.usage
        if u is not None and u.median_ratio is not None:
            metrics.update(
                {
                    "usage.median_ratio": u.median_ratio,
                    "usage.jump_share": u.jump_share,
                    "usage.new_high_share": u.new_high_share,
                    "usage.missing_share": u.missing_current,
                }
            )
        for f in s.features:
            if f.score is not None:
                metrics[f"drift_score.{f.column}"[:250]] = f.score
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, timestamp=step_ms)
        for p in files:
            mlflow.log_artifact(str(p), "drift")
        run_id = str(run.info.run_id)
    try:
        client.set_model_version_tag(registered, s.model_version, "drift.last_status", s.status)
        client.set_model_version_tag(registered, s.model_version, "drift.last_run", run_id)
        client.set_model_version_tag(
            registered, s.model_version, "drift.last_window", f"{s.window_start}..{s.window_end}"
        )
    except Exception as exc:  # a version absent from this registry: the run is still logged
        log.warning("could not tag %s v%s: %s", registered, s.model_version, exc)
    return run_id


def drift_report(
    settings: Settings,
    cfg: MonitoringConfig,
    model: str,
    *,
    window: str | None = None,
    end: datetime | None = None,
    version: str | None = None,
    registered_name: str | None = None,
    reference: pd.DataFrame | None = None,
    current: pd.DataFrame | None = None,
    html: bool = True,
    log_mlflow: bool = True,
) -> ReportOutcome:
    """Report one window of ``model``'s traffic; alert when drift is found."""
    from training import tracking
    from training.reference import load_reference

    span = parse_duration(window or cfg.window)
    end = end or datetime.now(UTC)
    registered = registered_name or model
    if current is None:
        current, version = load_window(predlog_root(settings, cfg), model, end, span, version)
    elif version is None:
        version = str(current["model_version"].iloc[-1]) if "model_version" in current else "?"
    if reference is None:
        tracking.setup(settings)
        reference = load_reference(registered, str(version))
    s = compute_drift(
        reference,
        current,
        cfg,
        model_name=model,
        model_version=str(version),
        window_start=end - span,
        window_end=end,
    )
    if cfg.usage.dataset is not None:  # the window's reads against the previous windows
        from features.datasets import resolve_dataset
        from serving.monitoring.usage import window_usage

        # a dataset NAME (WATTWISE_MONITORING_USAGE__DATASET=synthetic) or a path from the root
        usage_ds = resolve_dataset(str(cfg.usage.dataset), settings.data_dir, cwd=settings.root)
        s = s.with_usage(window_usage(usage_ds.path, end, span, cfg.usage))
    folder = reports.report_dir(settings.reports_dir, s)
    html_path = None
    if html and s.status != "insufficient":
        html_path = render_html(reference, current, s, folder / reports.REPORT, cfg)
    json_path = reports.write_summary(folder, s)
    index = reports.write_index(settings.reports_dir)
    run_id = None
    if log_mlflow:
        run_id = _mlflow_log(
            settings, cfg, registered, s, [json_path] + ([html_path] if html_path else [])
        )
    alerted = False
    if s.drift_found:
        alerted = True
        send_alert(
            cfg.alerts,
            "drift",
            {
                "model": model,
                "version": s.model_version,
                "window": [s.window_start, s.window_end],
                "reasons": s.reasons,
                "drifted_features": s.drifted_features[:20],
                "report": str(html_path or json_path),
            },
        )
    return ReportOutcome(s, folder, html_path, json_path, index, run_id, alerted)


# --------------------------------------------------------------------------- performance


@dataclass
class PerformanceResult:
    """Metrics per period of prediction time against the metrics at training."""

    model: str
    version: str
    training: dict[str, float]
    periods: pd.DataFrame
    alerts: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"{self.model} v{self.version}: training "
            + ", ".join(f"{k} {v:.4f}" for k, v in self.training.items())
        ]
        lines.append(self.periods.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        lines += [f"  ALERT {a}" for a in self.alerts]
        return "\n".join(lines)


BINARY_METRICS = ("roc_auc", "pr_auc", "brier")
REGRESSION_METRICS = ("mae", "rmse")


def training_metrics(registered: str, version: str) -> dict[str, float]:
    """The ``test_*`` metrics logged by the version's training run."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        run_id = client.get_model_version(registered, version).run_id
    except Exception as exc:
        from wattwise.errors import WattwiseError

        raise WattwiseError(f"model {registered} v{version} is not registered") from exc
    m = client.get_run(str(run_id)).data.metrics
    return {k[len("test_") :]: float(v) for k, v in m.items() if k.startswith("test_")}


def join_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, key: bytes | None, horizon: timedelta
) -> pd.DataFrame:
    """Predictions with the label observed for their customer within ``horizon`` after them.

    ``labels`` has ``customer_id`` (hashed here with the log's key) or ``customer_key``,
    ``label``, and optionally ``ts`` (when the outcome was observed); without ``ts`` a label
    applies to every prediction of the customer.
    """
    from serving.predlog import pseudonymize

    if "label" not in labels.columns:
        raise DataError("labels need a 'label' column (1/0, true/false, or a measured value)")
    lab = labels.copy()
    if "customer_key" not in lab.columns:
        if "customer_id" not in lab.columns:
            raise DataError("labels need a 'customer_id' or 'customer_key' column")
        if key is None:
            raise DataError("labels by customer_id need the prediction log key to join")
        lab["customer_key"] = [pseudonymize(key, str(c)) for c in lab["customer_id"]]
    lab["label"] = pd.to_numeric(
        lab["label"].replace({"true": 1, "false": 0, "True": 1, "False": 0}), errors="coerce"
    )
    lab = lab.dropna(subset=["label"])
    cols = ["customer_key", "label"] + (["ts"] if "ts" in lab.columns else [])
    out = predictions[["customer_key", "ts", "prediction"]].merge(
        lab[cols].rename(columns={"ts": "label_ts"}), on="customer_key", how="inner"
    )
    if "label_ts" in out.columns:
        lt = pd.to_datetime(out["label_ts"], utc=True)
        out = out[(lt >= out["ts"]) & (lt <= out["ts"] + horizon)].drop(columns="label_ts")
    return out.reset_index(drop=True)


def performance_over_time(
    joined: pd.DataFrame, training: dict[str, float], cfg: MonitoringConfig
) -> tuple[pd.DataFrame, list[str]]:
    """Metrics per period (``cfg.performance.period``) and alerts against training."""
    from training.metrics import binary_metrics

    pc = cfg.performance
    if joined.empty:
        raise DataError("no prediction matched a label: check the key, ids and label times")
    binary = bool(np.isin(joined["label"].unique(), [0, 1]).all())
    period = joined["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(pc.period)
    rows = []
    for p, g in joined.groupby(period, sort=True):
        y, pr = g["label"].to_numpy(float), g["prediction"].to_numpy(float)
        row: dict[str, Any] = {"period": str(p), "labels": len(g)}
        if binary:
            bm = binary_metrics(y, pr)
            row.update({k: bm[k] for k in BINARY_METRICS})
        else:
            err = pr - y
            row.update({"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))})
        rows.append(row)
    table = pd.DataFrame(rows)
    alerts = []
    for r in rows:
        if r["labels"] < pc.min_labels:
            continue
        for m, drop in pc.max_drop.items():
            if m in r and m in training and np.isfinite(r[m]) and training[m] - r[m] > drop:
                alerts.append(
                    f"{r['period']}: {m} {r[m]:.4f} is {training[m] - r[m]:.4f} below training "
                    f"({training[m]:.4f}; allowed {drop})"
                )
        for m, rise in {**pc.max_rise}.items():
            if m in r and m in training and np.isfinite(r[m]) and r[m] - training[m] > rise:
                alerts.append(
                    f"{r['period']}: {m} {r[m]:.4f} is {r[m] - training[m]:.4f} above training "
                    f"({training[m]:.4f}; allowed {rise})"
                )
    return table, alerts


def performance_report(
    settings: Settings,
    cfg: MonitoringConfig,
    model: str,
    labels: pd.DataFrame,
    *,
    key: bytes | None,
    since: datetime | None = None,
    version: str | None = None,
    registered_name: str | None = None,
    horizon: str = "90d",
    log_mlflow: bool = True,
) -> PerformanceResult:
    """Performance of ``model`` over time once labels arrived; alert on a configured drop."""
    import mlflow

    from serving.predlog import read_predictions
    from training import tracking

    preds = read_predictions(predlog_root(settings, cfg), model, since, None)
    if preds.empty:
        raise DataError(f"no predictions of {model!r} in the prediction log")
    version = version or str(preds["model_version"].iloc[-1])
    preds = preds[preds["model_version"].astype(str) == version]
    registered = registered_name or model
    tracking.setup(settings)
    train_m = {k: v for k, v in training_metrics(registered, version).items()}
    joined = join_labels(preds, labels, key, parse_duration(horizon))
    table, alerts = performance_over_time(joined, train_m, cfg)
    shown = {k: train_m[k] for k in (*BINARY_METRICS, *REGRESSION_METRICS) if k in train_m}
    res = PerformanceResult(model, version, shown, table, alerts)
    if log_mlflow:
        tracking.experiment(settings, cfg.mlflow_experiment)
        with mlflow.start_run(run_name=f"performance-{registered}-v{version}"):
            mlflow.set_tags(
                {
                    "wattwise.model": registered,
                    "wattwise.model_version": version,
                    "monitoring.kind": "performance",
                    "monitoring.status": "alert" if alerts else "ok",
                }
            )
            for r in table.to_dict("records"):
                ts = int(pd.Period(r["period"]).start_time.tz_localize("UTC").timestamp() * 1000)
                mlflow.log_metrics(
                    {k: float(v) for k, v in r.items() if k != "period" and np.isfinite(v)},
                    timestamp=ts,
                )
    if alerts:
        send_alert(
            cfg.alerts, "performance", {"model": model, "version": version, "alerts": alerts}
        )
    return res
