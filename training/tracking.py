"""MLflow set-up from settings: the sqlite tracking database and the artifact root."""

from __future__ import annotations

import logging
import threading
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


def _warm() -> None:
    try:
        import mlflow.pyfunc.scoring_server  # noqa: F401  (log_model's input validation)
        from mlflow.utils import requirements_utils

        # the installed-packages map that checks explicit requirements; built once per process
        requirements_utils._init_packages_to_modules_map()
    except Exception:  # noqa: BLE001 - warming is an optimisation, never a failure
        log.debug("MLflow warm-up failed", exc_info=True)


def prewarm() -> threading.Thread:
    """Pay MLflow's once-per-process costs of ``log_model`` in the background.

    The first ``log_model`` of a process scans every installed distribution (to check the
    explicit requirements) and imports the scoring server (to validate the input example):
    about a second that would otherwise land on the critical path after tuning.
    """
    t = threading.Thread(target=_warm, name="mlflow-prewarm", daemon=True)
    t.start()
    return t


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
