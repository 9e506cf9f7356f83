"""A scratch MLflow and a featurized synthetic world for the training benchmarks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ENV = (
    "WATTWISE_PATHS__MLRUNS_DIR",
    "WATTWISE_MLFLOW__TRACKING_URI",
    "WATTWISE_MLFLOW__ARTIFACT_ROOT",
)


@contextmanager
def training_world(prefix: str, customers: int) -> Iterator[Path]:
    """The world of ``$WATTWISE_BENCH_WORLD`` (else ``customers`` × 396 days, generated),
    its features built and applied, with MLflow pointed at a temporary folder removed after."""
    import mlflow

    from features.pipeline import build_features
    from features.store import apply
    from features.synth.config import load_world_config
    from features.synth.generate import generate
    from training.kinds import feature_services

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        env = os.environ.get("WATTWISE_BENCH_WORLD")
        ds = Path(env) if env else tmp / "synthetic"
        if not env:
            generate(load_world_config(customers=customers, days=396), ds)
        if not (ds / "features" / "usage.parquet").exists():
            build_features(ds)
        apply(ds, feature_services())
        os.environ["WATTWISE_PATHS__MLRUNS_DIR"] = str(tmp / "mlruns")
        os.environ["WATTWISE_MLFLOW__TRACKING_URI"] = f"sqlite:///{tmp}/mlruns/mlflow.db"
        os.environ["WATTWISE_MLFLOW__ARTIFACT_ROOT"] = str(tmp / "mlruns" / "artifacts")
        yield ds
    finally:
        for k in _ENV:
            os.environ.pop(k, None)
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # back to the default
        shutil.rmtree(tmp, ignore_errors=True)
