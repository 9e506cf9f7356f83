"""Every registered model kind passes the same contract (in the spirit of scikit-learn's
common estimator checks): its declaration is complete and consistent, and its spec runs the
pipeline's steps on the tiny world with the results the pipeline relies on.

The checks per kind: the configs of that kind validate with its config class; its
FeatureService, labels, outputs and routes are declared and known to the service; the
spec's data is fingerprinted deterministically; a trial returns a finite validation score;
evaluation gives the gate's metric and every floor metric; the packaged pyfunc, saved and
loaded as MLflow loads it, predicts its example, and the gate's re-scoring of it on the
logged test set gives a finite gate metric (equal to evaluation's where the logged set is
the whole test split), and a version never beats itself (a tie keeps the champion).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from training.config import ModelConfig, load_model_config
from training.kinds import Kind, registry
from training.registry import gate

KINDS = sorted(registry())
# small budgets of the real configs (the behaviour under test is the contract, not accuracy)
QUICK: dict[str, dict[str, Any]] = {
    "churn": {"estimator": {"n_estimators": 30}, "promotion": {"floor": {}}},
    "propensity": {
        "estimator": {"n_estimators": 20},
        "programs": ["paperless", "budget_billing", "tou_rate"],
    },
    "dr_response": {"estimator": {"n_estimators": 40}},
    "disaggregation": {"compare_archs": []},
}
# kinds whose gate re-scores a sample of the test split (windows of the test homes), not all
SAMPLED_GATE = {"disaggregation"}


def quick_config(kind: str) -> ModelConfig:
    over = dict(QUICK.get(kind, {}))
    if kind == "disaggregation":
        from tests.disaggregation.conftest import TINY_NET, TINY_SPACE

        over |= {"estimator": TINY_NET, "search_space": TINY_SPACE}
    tuning = {"trials": 1, "timeout_s": 60}
    if kind != "disaggregation":
        tuning["n_jobs_lightgbm"] = 1
    return load_model_config(kind, tuning=tuning, **over)


@pytest.fixture(scope="module")
def world(tiny_feature_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny store with its DR events settled (the DR kind trains on settlements)."""
    from features.dr.config import load_dr_config
    from features.dr.settle import settle_events
    from features.store import apply
    from training.kinds import feature_services

    ds = tmp_path_factory.mktemp("contract") / "synthetic"
    shutil.copytree(tiny_feature_store, ds)
    settle_events(ds, load_dr_config())
    apply(ds, feature_services())
    return ds


@pytest.mark.parametrize("name", KINDS)
def test_the_declaration_is_complete(name: str) -> None:
    from serving.core import ScoringCore
    from training.config import config_path
    from wattwise.config import read_yaml

    kind: Kind = registry()[name]
    assert kind.name == name and kind.summary
    assert issubclass(kind.config, ModelConfig)
    configs = [
        p for p in config_path("churn").parent.glob("*.yaml") if read_yaml(p).get("kind") == name
    ]
    assert configs, f"no config of kind {name} under configs/models"
    for p in configs:
        cfg = load_model_config(p)
        assert type(cfg) is kind.config and cfg.kind == name
        assert cfg.promotion.metric, p
    assert kind.feature_service is not None and kind.feature_service.groups
    assert kind.labels is not None
    assert all(t in (float, int, bool, str) for t in kind.outputs.values())
    assert kind.routes, f"{name} has no route"
    for r in kind.routes:
        assert r.path.startswith("/") and r.summary
        assert issubclass(r.request, BaseModel) and issubclass(r.response, BaseModel)
        assert r.handler in ScoringCore.HANDLERS
        assert r.request.model_config.get("extra") == "forbid", r.path  # typos are refused
    spec = kind.spec()
    for step in (
        "load",
        "prepare",
        "objective",
        "fit",
        "evaluate",
        "package",
        "gate_metrics",
        "render",
    ):
        assert callable(getattr(spec, step, None)), (name, step)


@pytest.mark.slow
@pytest.mark.parametrize("name", KINDS)
def test_the_spec_runs_the_pipeline_contract(name: str, world: Path, tmp_path: Path) -> None:
    import mlflow
    from mlflow.models import infer_signature

    from training.pipeline import ints_as_doubles

    kind = registry()[name]
    cfg = quick_config(name)
    spec = kind.spec()
    data = spec.load(world, cfg, kind)
    prep = spec.prepare(data, cfg, world)
    again = kind.spec().prepare(spec.load(world, cfg, kind), cfg, world)
    assert prep.fingerprint == again.fingerprint and len(prep.fingerprint) >= 8
    assert prep.dataset_dir == world
    score = spec.objective(prep, cfg)(dict(cfg.estimator), None)
    first = score[0] if isinstance(score, tuple) else score
    assert math.isfinite(first), (name, score)

    fitted = spec.fit(prep, cfg, dict(cfg.estimator))
    ev = spec.evaluate(prep, cfg, fitted)
    metric = cfg.promotion.metric
    assert math.isfinite(ev.headline[metric]), (name, ev.headline)
    for m in cfg.promotion.floor:
        assert m in ev.logged or m in ev.headline, (name, m)
    assert spec.render(ev) and all(isinstance(line, str) for line in spec.render(ev))

    pkg = spec.package(prep, cfg, fitted, ev, tmp_path)
    assert len(pkg.example) > 0 and len(pkg.test_set) > 0
    example = ints_as_doubles(pkg.example)
    signature = pkg.signature or infer_signature(example, pkg.example_output, params=pkg.params)
    path = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=pkg.python_model,
        artifacts=pkg.artifacts,
        signature=signature,
        pip_requirements=pkg.requirements or ["mlflow"],
    )
    loaded = mlflow.pyfunc.load_model(str(path))
    out = loaded.predict(example)
    assert len(out) == len(example)
    for col in kind.outputs:
        assert col in out.columns, (name, col)
    got = spec.gate_metrics(loaded, pkg.test_set, pkg.tags)
    assert math.isfinite(got[metric]), (name, got)
    if name not in SAMPLED_GATE:  # the gate measures what evaluation measured
        assert got[metric] == pytest.approx(ev.headline[metric], rel=1e-6, abs=1e-9), name
    assert not gate(got, got, cfg.promotion)[0]  # a version never beats itself
    if pkg.reference is not None and pkg.predict is not None:
        p = np.asarray(pkg.predict(pkg.reference))
        assert len(p) == len(pkg.reference) and np.isfinite(p).all()
