"""Served history for a model that has not been served yet (notebook 05, demos).

A churn version is evaluated on customers it never saw in training (the customer-disjoint
test split). Scoring those customers at every monthly snapshot with the version itself, and
logging each score to a prediction log at the snapshot's time, gives the history the
service would have logged; their ``churned`` labels are what arrived afterwards. Both then
go through the real monitoring path (:func:`serving.monitoring.service.performance_report`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from wattwise.errors import WattwiseError

if TYPE_CHECKING:
    from wattwise.settings import Settings

REPLAY_KEY = b"wattwise-replayed-history-key"


@dataclass(frozen=True)
class Replayed:
    version: str
    root: Path  # the prediction log written
    key: bytes  # its customer-id key (labels join through it)
    labels: pd.DataFrame  # customer_id, label, ts (the snapshot the label belongs to)
    predictions: int


def replay_history(
    settings: Settings,
    root: Path,
    model: str = "churn",
    *,
    version: str | None = None,
    dataset_dir: Path | None = None,
    key: bytes = REPLAY_KEY,
) -> Replayed:
    """Log ``model``'s scores of its held-out customers at every snapshot; return the labels."""
    import mlflow

    from features.store import training_set
    from serving.predlog import PredictionLog, PredictionRecord
    from training import registry, tracking
    from training.kinds import get_kind

    client = tracking.setup(settings)
    version = version or registry.alias_version(client, model, registry.CHAMPION)
    if version is None:
        raise WattwiseError(f"{model} has no @champion version: train it first")
    held_out = set(registry.load_test_set(client, model, version)["customer_id"].astype(str))
    ds = dataset_dir or settings.data_dir / "synthetic"
    churn = get_kind("churn")
    assert churn.labels is not None and churn.service_name is not None
    rows = training_set(ds, churn.labels, churn.service_name)
    rows = rows[rows["customer_id"].astype(str).isin(held_out)].reset_index(drop=True)
    if rows.empty:
        raise WattwiseError(f"none of {model} v{version}'s test customers is in {ds}")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    inputs = registry.model_inputs(pyfunc, rows)
    prob = np.asarray(pyfunc.predict(inputs)["probability"], dtype=float)
    ts = pd.to_datetime(rows["event_timestamp"], utc=True)
    records = [
        PredictionRecord(
            request_id=uuid.uuid4().hex,
            ts=t.to_pydatetime(),
            model_name=model,
            model_version=str(version),
            customer_id=str(c),
            prediction=float(p),
            features={k: (None if pd.isna(v) else v) for k, v in feats.items()},
        )
        for c, t, p, feats in zip(
            rows["customer_id"], ts, prob, inputs.to_dict("records"), strict=True
        )
    ]
    with PredictionLog(root, key) as plog:
        plog.append(records)
    labels = pd.DataFrame(
        {"customer_id": rows["customer_id"].astype(str), "label": rows["churned"], "ts": ts}
    )
    return Replayed(str(version), root, key, labels, len(records))
