"""The one training pipeline: every model is a config plus a small spec (training.spec).

training set (feature store) → time or stratified split → preprocessor → Optuna study whose
trials call the spec's fit function → final fit with the best parameters → evaluation (and
the oracle on synthetic data) → MLflow (parent run with nested trial runs, parameters,
metrics, plots, fingerprint, row count, time range, FeatureService, the model as a pyfunc with
signature, input example and explicit requirements, the monitoring reference) → registered
version (@challenger) → gated promotion to @champion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config import ModelConfig
from training.data import feature_columns, fingerprint, load_training_set, season_weights, split
from training.estimators import FramePreprocessor
from training.spec import Evaluation, ModelSpec, Prepared, get_spec
from wattwise.errors import DataError

if TYPE_CHECKING:
    from training.registry import Promotion
    from training.tuning import TuneResult
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]  # headline test metrics (the gate's)
    tune: TuneResult
    seconds: float
    promotion: Promotion | None = None
    all_metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the spec's rendering of its evaluation

    @property
    def threshold(self) -> float:
        return float(self.details["threshold"])

    @property
    def oracle_auc(self) -> float | None:
        v = self.details.get("oracle_auc")
        return None if v is None else float(v)

    @property
    def per_program(self) -> dict[str, dict[str, float]]:
        return dict(self.details.get("per_program", {}))

    def render(self) -> str:
        t = self.tune
        out = [
            f"{self.model_name} v{self.version} (run {self.run_id[:8]}) in {self.seconds:.1f} s; "
            f"study {t.study_name}: {t.trials_run} new trials ({t.trials_total} total, "
            f"{t.pruned} pruned) in {t.seconds:.1f} s, best valid {t.best_value:.4f}",
            *self.lines,
        ]
        if self.promotion is not None:
            verb = "promoted to @champion" if self.promotion.moved else "not promoted"
            out.append(f"  {verb}: {self.promotion.reason}")
        return "\n".join(out)


def train(
    cfg: ModelConfig,
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    promote: bool = True,
    training_set: pd.DataFrame | None = None,
) -> TrainResult:
    """Train, evaluate, log, register and (gated) promote the model a config describes."""
    import mlflow

    from training import registry, tracking
    from training.tuning import PARTS_KEY, tune

    t0 = time.perf_counter()
    warm = tracking.prewarm()
    spec = get_spec(cfg.spec)
    ds = dataset_dir or settings.data_dir / cfg.dataset
    client = tracking.setup(settings)
    tracking.experiment(settings, cfg.name)
    df = training_set if training_set is not None else load_training_set(ds, spec.labels)
    prep = prepare(df, cfg, spec, ds)
    # a study resumes only for the same data and the same search: another space, estimator
    # or metric is another study (its trials would not be comparable)
    search = json.dumps(
        [
            cfg.estimator,
            cfg.model_dump(mode="json")["search_space"],
            cfg.metric.name,
            *([cfg.season_weight_months] if cfg.season_weight_months else []),
        ],
        sort_keys=True,
        default=str,
    )
    study_name = (
        f"{cfg.name}-{ds.name}-{prep.fingerprint}-{hashlib.sha1(search.encode()).hexdigest()[:8]}"
    )

    with mlflow.start_run(run_name=f"{cfg.name}-{prep.fingerprint[:8]}") as parent:
        ts = prep.df["event_timestamp"]
        mlflow.log_params(
            {
                "dataset": ds.name,
                "feature_service": cfg.feature_service,
                "training_set_fingerprint": prep.fingerprint,
                "training_rows": len(prep.df),
                "time_range": f"{ts.min():%Y-%m-%d}..{ts.max():%Y-%m-%d}",
                "split": prep.split.description,
                "n_features": len(prep.feats),
                "label": ",".join(prep.labels),
                "calibration": cfg.calibration,
                "season_weight_months": cfg.season_weight_months,
            }
        )
        mlflow.set_tags(
            {"wattwise.spec": cfg.spec, "wattwise.model": cfg.model_name, "study": study_name}
        )

        def log_trial(t: Any) -> None:
            with mlflow.start_run(run_name=f"trial-{t.number}", nested=True):
                mlflow.log_params(t.params)
                mlflow.set_tag("state", t.state.name)
                if t.value is not None:
                    mlflow.log_metric(f"valid_{cfg.metric.name}", t.value)

        tres = tune(
            cfg,
            settings,
            spec.objective(prep, cfg),
            study_name,
            trials=trials,
            timeout_s=timeout_s,
            log_trial=log_trial,
        )
        params: dict[str, Any] = {**cfg.estimator, **tres.best_params}
        if tres.best_params_by_part:  # a multi-model spec: each part with its own best trial
            params[PARTS_KEY] = {
                part: {**cfg.estimator, **bp} for part, bp in tres.best_params_by_part.items()
            }
            mlflow.log_dict(tres.best_params_by_part, "best_params_by_part.json")
        fitted = spec.fit(prep, cfg, params)
        ev = spec.evaluate(prep, cfg, fitted)
        mlflow.log_params({f"best_{k}": v for k, v in tres.best_params.items()})
        mlflow.log_metric("best_valid_score", tres.best_value)
        mlflow.log_metrics({f"test_{k}": v for k, v in ev.logged.items() if np.isfinite(v)})
        warm.join()  # normally long done: tuning takes longer than the warm-up
        version = _log_and_register(cfg, spec, prep, fitted, ev)
        run_id = parent.info.run_id
    registry.move_alias(
        settings, client, cfg.model_name, registry.CHALLENGER, version, ev.headline, "newly trained"
    )
    promotion = (
        registry.promote(settings, cfg.model_name, cfg.promotion, candidate=version)
        if promote
        else None
    )
    return TrainResult(
        cfg.model_name,
        version,
        run_id,
        ev.headline,
        tres,
        time.perf_counter() - t0,
        promotion,
        ev.logged,
        ev.details,
        spec.render(ev),
    )


def prepare(df: pd.DataFrame, cfg: ModelConfig, spec: ModelSpec, ds: Path) -> Prepared:
    """Labelled rows, feature columns, split and preprocessor: the same for every model."""
    labels = spec.label_columns(df, cfg)
    missing = [c for c in labels if c not in df]
    if missing:
        raise DataError(f"label {missing[0]!r} is not in the training set")
    df = df[df[labels].notna().any(axis=1)].reset_index(drop=True)
    target = spec.split_target(df, cfg)
    if len(np.unique(target[np.isfinite(target)])) < 2:
        raise DataError(f"label {labels[0]!r} has a single class in {len(df)} rows")
    feats = feature_columns(df, cfg, labels)
    sp = split(df, target, cfg.split, cfg.tuning.seed)
    pre = FramePreprocessor().fit(df.loc[sp.train, feats])
    weight = (
        season_weights(df["event_timestamp"], df.loc[sp.test, "event_timestamp"], scale)
        if (scale := cfg.season_weight_months)
        else None
    )
    return Prepared(
        ds, df, pre.transform(df[feats]), feats, sp, pre, fingerprint(df), labels, weight
    )


def _log_and_register(
    cfg: ModelConfig, spec: ModelSpec, prep: Prepared, fitted: Any, ev: Evaluation
) -> str:
    """Log plots, the test set, the pyfunc and the monitoring reference; register a version."""
    import mlflow
    from mlflow.models import infer_signature

    from training.reference import build_reference, log_reference
    from training.registry import TEST_SET
    from training.tracking import PIP_REQUIREMENTS

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pkg = spec.package(prep, cfg, fitted, ev, d)
        for path, folder in pkg.files.items():
            mlflow.log_artifact(str(path), folder)
        (d / "eval").mkdir(exist_ok=True)
        pkg.test_set.to_parquet(d / "eval" / "test_set.parquet", index=False)
        mlflow.log_artifact(str(d / "eval" / "test_set.parquet"), str(Path(TEST_SET).parent))
        signature = infer_signature(pkg.example, pkg.example_output)
        t_log = time.perf_counter()
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pkg.python_model,
            artifacts=pkg.artifacts,
            signature=signature,
            input_example=pkg.example,
            pip_requirements=PIP_REQUIREMENTS,
        )
        mlflow.log_metric("log_model_seconds", time.perf_counter() - t_log)
        sample = prep.df.loc[prep.split.test, prep.feats]
        log_reference(build_reference(sample, pkg.predict(sample), 5000, cfg.tuning.seed))
    mv = mlflow.register_model(
        info.model_uri, cfg.model_name, tags={"wattwise.spec": cfg.spec, **pkg.tags}
    )
    return str(mv.version)


def train_binary(cfg: ModelConfig, settings: Settings, **kw: Any) -> TrainResult:
    """Train a churn-like binary model (``train`` with a binary spec)."""
    return train(cfg, settings, **kw)


def train_propensity(cfg: ModelConfig, settings: Settings, **kw: Any) -> TrainResult:
    """Train the per-program propensity and uplift model (``train`` with its spec)."""
    return train(cfg, settings, **kw)
