"""Serving fixtures: small churn and propensity models registered in a temporary MLflow,
trained by the real pipeline on the tiny store's own feature tables, and one running service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from serving.config import hash_key
from wattwise.settings import MlflowSettings, PathSettings, Settings

USER_KEY, ADMIN_KEY = "user-key-0123456789abcdef", "admin-key-0123456789abcdef"
PREDLOG_KEY = "test-predlog-key-0123456789"
PROGRAMS = ["paperless", "budget_billing"]


def feature_frame(features_dir: Path, service: str | None = None) -> pd.DataFrame:
    """The customer-keyed feature groups (of ``service``, else all) joined on
    (customer_id, event_timestamp)."""
    from features.store import SERVICES

    groups = SERVICES[service] if service else None
    frame: pd.DataFrame | None = None
    for p in sorted(features_dir.glob("*.parquet")):
        if groups is not None and p.stem not in groups:
            continue
        names = pq.read_schema(p).names
        if "customer_id" not in names or "event_timestamp" not in names:
            continue
        df = pd.read_parquet(p).drop(columns=["created_timestamp"], errors="ignore")
        df = df.drop_duplicates(["customer_id", "event_timestamp"], keep="last")
        frame = (
            df
            if frame is None
            else frame.merge(df, on=["customer_id", "event_timestamp"], how="outer")
        )
    assert frame is not None
    return frame.sort_values(["event_timestamp", "customer_id"]).reset_index(drop=True)


@dataclass
class Served:
    settings: Settings
    dataset_dir: Path
    frame: pd.DataFrame  # the training frame (features of every snapshot)
    churn_version: str
    propensity_version: str


@pytest.fixture(scope="session")
def served_models(
    tmp_path_factory: pytest.TempPathFactory, tiny_feature_store: Path
) -> Iterator[Served]:
    import mlflow

    from training.config import load_model_config
    from training.pipeline import train_binary
    from training.propensity import train_propensity

    root = tmp_path_factory.mktemp("serving")
    settings = Settings(
        root=root,
        paths=PathSettings(data_dir=tiny_feature_store.parent, mlruns_dir=root / "mlruns"),
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db", artifact_root=root / "mlruns" / "art"
        ),
    )
    frame = feature_frame(tiny_feature_store / "features", "churn_v1")
    rng = np.random.default_rng(3)
    usage = frame["usage_mean_daily_kwh_30d"].fillna(frame["usage_mean_daily_kwh_30d"].median())
    z = (usage - usage.mean()) / usage.std()
    churn = frame.assign(churned=rng.random(len(frame)) < 1 / (1 + np.exp(-(-1.5 + 1.5 * z))))
    nowhere = root / "no-truth"
    tuning = {"trials": 1, "timeout_s": 60, "n_jobs_lightgbm": 1}
    c = train_binary(
        load_model_config("churn", tuning=tuning, estimator={"n_estimators": 30}),
        settings,
        dataset_dir=nowhere,
        training_set=churn,
    )
    prop = feature_frame(tiny_feature_store / "features", "propensity_v1")
    prop = prop.merge(frame[["customer_id", "event_timestamp"]], how="right")
    eligible = rng.random(len(prop)) < 0.8  # the rest were not eligible: no label
    for p in PROGRAMS:
        offered = rng.random(len(prop)) < 0.5
        enrolled = rng.random(len(prop)) < np.where(offered, 0.35, 0.15) + 0.1 * (z > 0)
        prop[f"offered_{p}"] = offered
        prop[f"enrolled_{p}"] = pd.array(np.where(eligible, enrolled, False), dtype="boolean")
        prop.loc[~eligible, f"enrolled_{p}"] = pd.NA
    pr = train_propensity(
        load_model_config(
            "propensity", tuning=tuning, estimator={"n_estimators": 20}, programs=PROGRAMS
        ),
        settings,
        dataset_dir=nowhere,
        training_set=prop,
    )
    assert c.promotion is not None and c.promotion.moved
    assert pr.promotion is not None and pr.promotion.moved
    yield Served(settings, tiny_feature_store, frame, c.version, pr.version)
    mlflow.set_tracking_uri(None)


@dataclass
class Service:
    url: str
    server: object
    predlog_root: Path
    served: Served


@pytest.fixture(scope="session")
def service(served_models: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service with auth on (a user key and an admin key), max batch 50."""
    from serving.server import settings_env, start_server, stop_server

    tmp = tmp_path_factory.mktemp("service")
    keys = (
        f"[{{name: user, sha256: {hash_key(USER_KEY)}}}, "
        f"{{name: ops, sha256: {hash_key(ADMIN_KEY)}, admin: true}}]"
    )
    env = {
        **settings_env(served_models.settings, served_models.dataset_dir),
        "WW_SERVING_AUTH__ENABLED": "true",
        "WW_SERVING_AUTH__KEYS": keys,
        "WW_SERVING_MAX_BATCH": "50",
        "WW_SERVING_RELOAD_INTERVAL_S": "3600",
        "WW_SERVING_PREDLOG__ROOT": str(tmp / "predlog"),
        "WW_PREDLOG_KEY": PREDLOG_KEY,
    }
    server = start_server(env, log_path=tmp / "service.log")
    try:
        yield Service(server.url, server, tmp / "predlog", served_models)
    finally:
        stop_server(server)
