"""MLflow set-up from settings: the sqlite tracking database and the artifact root."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from wattwise.settings import Settings

log = logging.getLogger(__name__)

PIP_REQUIREMENTS = [
    "mlflow==3.17.2",
    "lightgbm>=4.7,<4.8",
    "scikit-learn>=1.9,<1.10",
    "pandas<3",
    "numpy",
]


def setup(settings: Settings) -> MlflowClient:
    """Point MLflow at the project's database; return a client."""
    import mlflow

    settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return mlflow.MlflowClient(
        tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri
    )


def experiment(settings: Settings, name: str) -> str:
    """Create or get ``<prefix>/<name>`` with artifacts under the artifact root."""
    import mlflow

    full = f"{settings.mlflow.experiment_prefix}/{name}"
    exp = mlflow.get_experiment_by_name(full)
    if exp is None:
        loc = (settings.artifact_root / name).as_uri()
        exp_id = mlflow.create_experiment(full, artifact_location=loc)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)
