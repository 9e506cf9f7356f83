"""Serving fixtures: a model of every kind, trained by the one pipeline (as ``wattwise train
KIND`` trains it) on the tiny world and registered in a temporary MLflow, and one running
service that serves those registered models (no stand-in models).

Churn and propensity train on the tiny store's own features with labels drawn from them
(the tiny world's 120 customers give too few churners to learn from); disaggregation trains
on the tiny world's sub-metered panel, DR response on its settled events. Tiny models may
not pass a production floor, so the floors are off here: the registry then makes each first
version @champion, as it would a first version above its floor.
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
MAX_BODY = 256 * 1024  # the service's body limit, above what any test here sends but the 413 tests


def feature_frame(features_dir: Path, service: str | None = None) -> pd.DataFrame:
    """The customer-keyed feature groups (of ``service``, else all) joined on
    (customer_id, event_timestamp)."""
    from training.kinds import feature_services

    groups = {s.name: s.groups for s in feature_services()}[service] if service else None
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
    disaggregation_version: str
    dr_version: str


def serving_dataset(root: Path, tiny_feature_store: Path) -> Path:
    """A copy of the tiny store with its DR events settled (the dr_performance group) and
    every kind's FeatureService applied and materialized."""
    import shutil

    from features.dr.config import load_dr_config
    from features.dr.settle import settle_events
    from features.store import apply, materialize
    from training.kinds import feature_services

    ds = root / "data" / "synthetic"
    shutil.copytree(tiny_feature_store, ds)
    settle_events(ds, load_dr_config())
    apply(ds, feature_services())
    materialize(ds)
    return ds


@pytest.fixture(scope="session")
def served_models(
    tmp_path_factory: pytest.TempPathFactory, tiny_feature_store: Path
) -> Iterator[Served]:
    import mlflow

    from tests.disaggregation.conftest import TINY_NET, TINY_SPACE
    from training.config import load_model_config
    from training.pipeline import train

    root = tmp_path_factory.mktemp("serving")
    ds = serving_dataset(root, tiny_feature_store)
    settings = Settings(
        root=root,
        paths=PathSettings(data_dir=ds.parent, mlruns_dir=root / "mlruns"),
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db", artifact_root=root / "mlruns" / "art"
        ),
    )
    frame = feature_frame(ds / "features", "churn_v1")
    rng = np.random.default_rng(3)
    usage = frame["usage_mean_daily_kwh_30d"].fillna(frame["usage_mean_daily_kwh_30d"].median())
    z = (usage - usage.mean()) / usage.std()
    churn = frame.assign(churned=rng.random(len(frame)) < 1 / (1 + np.exp(-(-1.5 + 1.5 * z))))
    nowhere = root / "no-truth"
    tuning = {"trials": 1, "timeout_s": 60, "n_jobs_lightgbm": 1}
    c = train(
        load_model_config("churn", tuning=tuning, estimator={"n_estimators": 30}),
        settings,
        dataset_dir=nowhere,
        data=churn,
    )
    prop = feature_frame(ds / "features", "propensity_v1")
    prop = prop.merge(frame[["customer_id", "event_timestamp"]], how="right")
    eligible = rng.random(len(prop)) < 0.8  # the rest were not eligible: no label
    for p in PROGRAMS:
        offered = rng.random(len(prop)) < 0.5
        enrolled = rng.random(len(prop)) < np.where(offered, 0.35, 0.15) + 0.1 * (z > 0)
        prop[f"offered_{p}"] = offered
        prop[f"enrolled_{p}"] = pd.array(np.where(eligible, enrolled, False), dtype="boolean")
        prop.loc[~eligible, f"enrolled_{p}"] = pd.NA
    pr = train(
        load_model_config(
            "propensity",
            tuning=tuning,
            estimator={"n_estimators": 20},
            programs=PROGRAMS,
            promotion={"floor": {}},
        ),
        settings,
        dataset_dir=nowhere,
        data=prop,
    )
    no_floor = {"promotion": {"floor": {}}}
    d = train(
        load_model_config(
            "disaggregation",
            estimator=TINY_NET,
            search_space=TINY_SPACE,
            tuning={"trials": 1, "timeout_s": 60},
            compare_archs=[],
            **no_floor,
        ),
        settings,
        dataset_dir=ds,
    )
    dr = train(
        load_model_config("dr_response", tuning=tuning, **no_floor), settings, dataset_dir=ds
    )
    for r in (c, pr, d, dr):
        assert r.promotion is not None and r.promotion.moved, (r.model_name, r.promotion)
    yield Served(settings, ds, frame, c.version, pr.version, d.version, dr.version)
    mlflow.set_tracking_uri(None)


@dataclass
class Service:
    url: str
    server: object
    predlog_root: Path
    served: Served


@pytest.fixture(scope="session")
def service(served_models: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service with auth on (a user key and an admin key), max batch 50, bodies
    up to ``MAX_BODY`` bytes; its log (stdout and stderr) is ``server.log_path``."""
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
        "WW_SERVING_LIMITS__MAX_BODY_BYTES": str(MAX_BODY),
        "WW_SERVING_RELOAD_INTERVAL_S": "3600",
        "WW_SERVING_PREDLOG__ROOT": str(tmp / "predlog"),
        "WW_PREDLOG_KEY": PREDLOG_KEY,
        # its own BentoML home: every `bentoml serve` empties <home>/prometheus_multiproc_dir
        # at start, so another service started meanwhile (test_serve_shutdown's, another
        # checkout's tests) would wipe this one's metrics
        "BENTOML_HOME": str(tmp / "bentoml"),
    }
    server = start_server(env, log_path=tmp / "service.log")
    try:
        yield Service(server.url, server, tmp / "predlog", served_models)
    finally:
        stop_server(server)
