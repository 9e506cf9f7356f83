"""The demo's last step: a drift report on a shifted week of churn traffic.

The week is the registered version's own test rows (its latest snapshots: what it would be
served), scored by the version itself after the ``price_rise`` scenario's effect on the
features has been applied (every tariff +25 %: the rate costs, the current cost, the saving
and the last bill amount), logged with timestamps
spread over the week, then reported like any other window. The week goes to the log that
the service writes and ``wattwise drift report`` reads (the monitoring config's
``predlog_root``, by default ``<data_dir>/predlog``, with the serving config's key): the
report the demo prints is the one a user gets by running the command after it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from serving.monitoring.config import MonitoringConfig, load_monitoring_config
from serving.monitoring.service import drift_report

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)

PRICE_RISE = 1.25
PRICE_COLUMNS = (
    "rate_cost_12m_",
    "rate_current_cost_12m",
    "rate_best_saving_12m",
    "bill_last_amount",
)


def price_rise(frame: pd.DataFrame, factor: float = PRICE_RISE) -> pd.DataFrame:
    """The features as a +25 % price rise changes them (what the scenario does to tariffs)."""
    out = frame.copy()
    for c in out.columns:
        if c.startswith(PRICE_COLUMNS) and pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c] * factor
    return out


def shifted_week_report(
    settings: Settings,
    model: str = "churn",
    *,
    version: str | None = None,
    cfg: MonitoringConfig | None = None,
    end: datetime | None = None,
) -> Path:
    """Log a price-rise week of ``model`` traffic and report it; returns the HTML path."""
    import mlflow

    from serving.predlog import PredictionLog, PredictionRecord
    from training import registry, tracking

    cfg = cfg or load_monitoring_config()
    client = tracking.setup(settings)
    version = version or registry.alias_version(client, model, registry.CHAMPION)
    if version is None:
        from wattwise.errors import WattwiseError

        raise WattwiseError(f"{model} has no @champion version to monitor: train it first")
    test = registry.load_test_set(client, model, version)
    last = test["event_timestamp"].max() if "event_timestamp" in test else None
    week = test[test["event_timestamp"] == last] if last is not None else test
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    inputs = price_rise(registry.model_inputs(pyfunc, week))
    prob = np.asarray(pyfunc.predict(inputs)["probability"], dtype=float)
    end = end or datetime.now(UTC).replace(microsecond=0)
    offsets = np.random.default_rng(settings.seed).uniform(0, 7 * 86400, len(inputs))
    ids = (
        week["customer_id"].astype(str).tolist()
        if "customer_id" in week
        else [f"row{i}" for i in range(len(week))]
    )
    from serving.config import load_serving_config
    from serving.monitoring.service import predlog_root

    root = predlog_root(settings, cfg)
    records = [
        PredictionRecord(
            request_id=uuid.uuid4().hex,
            ts=end - timedelta(seconds=float(o)),
            model_name=model,
            model_version=str(version),
            customer_id=cid,
            prediction=float(p),
            features={k: (None if pd.isna(v) else v) for k, v in row.items()},
        )
        for cid, p, o, row in zip(ids, prob, offsets, inputs.to_dict("records"), strict=True)
    ]
    with PredictionLog(root, load_serving_config().predlog.resolve_key()) as plog:
        plog.append(records)
    out = drift_report(
        settings, cfg, model, window="7d", end=end + timedelta(seconds=1), version=str(version)
    )
    log.info("demo drift report: %s (%s)", out.html, out.summary.status)
    return out.html or out.json
