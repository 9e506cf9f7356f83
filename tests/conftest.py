"""Shared fixtures: one tiny synthetic utility per test session, settings in a temp root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# OpenMP threads that spin while waiting (LightGBM, torch) crawl on a busy 2-core machine;
# must be set before those libraries load (see wattwise.app.cli.main)
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from features.synth.config import WorldConfig, load_world_config
from features.synth.generate import GenerateSummary, generate
from wattwise.settings import Settings, load_settings

TINY = {"customers": 120, "days": 400, "chunk_customers": 60, "workers": 2, "seed": 7}


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The project's settings (for paths such as ../shared/data)."""
    return load_settings()


@pytest.fixture(scope="session")
def shared_data(settings: Settings) -> Path:
    """The real public data folder, or skip when it is absent."""
    d = settings.shared_data_dir
    if not d.is_dir():
        pytest.skip(f"real data not found at {d} (../shared/data is absent on this machine)")
    return d


@pytest.fixture(scope="session")
def tiny_world_config() -> WorldConfig:
    return load_world_config(**TINY)


@pytest.fixture(scope="session")
def tiny_world(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_config: WorldConfig
) -> GenerateSummary:
    """One tiny synthetic utility (120 homes × 400 days, 30-min) shared by every test."""
    out = tmp_path_factory.mktemp("world") / "synthetic"
    return generate(tiny_world_config, out)


@pytest.fixture(scope="session")
def tiny_feature_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_world: GenerateSummary
) -> Path:
    """A copy of the tiny world with features built, applied in Feast and materialized."""
    import shutil

    from features.pipeline import build_features
    from features.store import apply, materialize
    from training.kinds import feature_services

    ds = tmp_path_factory.mktemp("fs") / "synthetic"
    shutil.copytree(tiny_world.out_dir, ds)
    build_features(ds)
    apply(ds, feature_services())
    materialize(ds)
    return ds


@pytest.fixture()
def mlflow_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Settings whose MLflow database and artifacts live in a temporary folder."""
    import mlflow

    monkeypatch.setenv("WATTWISE_PATHS__MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.setenv("WATTWISE_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    monkeypatch.setenv("WATTWISE_MLFLOW__ARTIFACT_ROOT", str(tmp_path / "mlruns" / "artifacts"))
    yield load_settings()
    mlflow.set_tracking_uri(None)
