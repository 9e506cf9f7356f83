"""One training pipeline for binary models (churn on any source).

training set (feature store) → split → Optuna study calling :func:`fit_lightgbm` → final fit
→ calibration and decision threshold → evaluation (and the oracle on synthetic data) →
MLflow (parent run with nested trial runs, metrics, plots, fingerprint, the model as a
pyfunc with signature, input example and explicit requirements) → registered version
(@challenger) → gated promotion to @champion.
"""

from __future__ import annotations

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
from training.data import feature_columns, fingerprint, load_training_set, split
from training.estimators import Calibrator, FramePreprocessor, fit_lightgbm
from training.metrics import best_threshold, binary_metrics
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
    metrics: dict[str, float]
    threshold: float
    tune: TuneResult
    seconds: float
    oracle_auc: float | None = None
    promotion: Promotion | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        m = self.metrics
        lines = [
            f"{self.model_name} v{self.version} (run {self.run_id[:8]}) in {self.seconds:.1f} s; "
            f"study {self.tune.study_name}: {self.tune.trials_run} new trials "
            f"({self.tune.trials_total} total, {self.tune.pruned} pruned), best valid {self.tune.best_value:.4f}",
            f"  test: ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  lift@10% {m['lift_top_decile']:.2f}  "
            f"Brier {m['brier']:.4f}  ECE {m['ece']:.4f}  rows {int(m['rows']):,}",
            f"  decision threshold {self.threshold:.3f} (max expected value on validation)",
        ]
        if self.oracle_auc is not None:
            lines.append(
                f"  oracle ROC-AUC (true probabilities, same rows) {self.oracle_auc:.4f}; "
                f"gap {self.oracle_auc - m['roc_auc']:+.4f}"
            )
        if self.promotion is not None:
            verb = "promoted to @champion" if self.promotion.moved else "not promoted"
            lines.append(f"  {verb}: {self.promotion.reason}")
        return "\n".join(lines)


def _labels_model(cfg: ModelConfig) -> str:
    return {"churn": "churn", "propensity": "propensity"}[cfg.spec]


def train_binary(
    cfg: ModelConfig,
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    promote: bool = True,
    training_set: pd.DataFrame | None = None,
) -> TrainResult:
    """Train, evaluate, log, register and (gated) promote one binary model."""
    import mlflow

    from training import registry, tracking
    from training.tuning import tune

    t0 = time.perf_counter()
    ds = dataset_dir or settings.data_dir / cfg.dataset
    client = tracking.setup(settings)
    tracking.experiment(settings, cfg.name)
    df = training_set if training_set is not None else load_training_set(ds, _labels_model(cfg))
    if cfg.label not in df:
        raise DataError(f"label {cfg.label!r} is not in the training set")
    df = df[df[cfg.label].notna()].reset_index(drop=True)
    y = df[cfg.label].astype(float).to_numpy()
    if len(np.unique(y)) < 2:
        raise DataError(f"label {cfg.label!r} has a single class in {len(df)} rows")
    feats = feature_columns(df, cfg, [cfg.label])
    sp = split(df, y, cfg.split, cfg.tuning.seed)
    pre = FramePreprocessor().fit(df.loc[sp.train, feats])
    X = pre.transform(df[feats])
    Xtr, Xva, Xte = X[sp.train], X[sp.valid], X[sp.test]
    ytr, yva, yte = y[sp.train], y[sp.valid], y[sp.test]
    fp = fingerprint(df)
    study_name = f"{cfg.name}-{ds.name}-{fp}"
    n_jobs = cfg.tuning.n_jobs_lightgbm

    with mlflow.start_run(run_name=f"{cfg.name}-{fp[:8]}") as parent:
        ts = df["event_timestamp"]
        mlflow.log_params(
            {
                "dataset": ds.name,
                "feature_service": cfg.feature_service,
                "training_set_fingerprint": fp,
                "training_rows": len(df),
                "time_range": f"{ts.min():%Y-%m-%d}..{ts.max():%Y-%m-%d}",
                "split": sp.description,
                "n_features": len(feats),
                "label": cfg.label,
                "calibration": cfg.calibration,
            }
        )
        mlflow.set_tags(
            {"wattwise.spec": cfg.spec, "wattwise.model": cfg.model_name, "study": study_name}
        )

        if cfg.split.kind == "stratified":
            from sklearn.model_selection import StratifiedKFold

            pool = sp.train | sp.valid
            Xp, yp = X[pool], y[pool]
            folds = list(
                StratifiedKFold(cfg.split.folds, shuffle=True, random_state=cfg.tuning.seed).split(
                    Xp, yp
                )
            )

            def fit_trial(params: dict[str, Any], report: Any) -> float:
                scores = []
                for k, (a, b) in enumerate(folds):
                    r = fit_lightgbm(
                        {**cfg.estimator, **params},
                        Xp.iloc[a],
                        yp[a],
                        Xp.iloc[b],
                        yp[b],
                        n_jobs=n_jobs,
                    )
                    scores.append(r.valid_score)
                    if report is not None:
                        report(k + 1, float(np.mean(scores)))
                return float(np.mean(scores))
        else:

            def fit_trial(params: dict[str, Any], report: Any) -> float:
                return fit_lightgbm(
                    {**cfg.estimator, **params}, Xtr, ytr, Xva, yva, n_jobs=n_jobs, report=report
                ).valid_score

        def log_trial(t: Any) -> None:
            with mlflow.start_run(run_name=f"trial-{t.number}", nested=True):
                mlflow.log_params(t.params)
                mlflow.set_tag("state", t.state.name)
                if t.value is not None:
                    mlflow.log_metric(f"valid_{cfg.metric.name}", t.value)

        tres = tune(
            cfg,
            settings,
            fit_trial,
            study_name,
            trials=trials,
            timeout_s=timeout_s,
            log_trial=log_trial,
        )
        best = {**cfg.estimator, **tres.best_params}
        final = fit_lightgbm(best, Xtr, ytr, Xva, yva, n_jobs=n_jobs)
        raw_va = final.booster.predict(Xva, num_iteration=final.best_iteration)
        cal = Calibrator(cfg.calibration).fit(raw_va, yva)
        b = cfg.business
        threshold, _ = best_threshold(
            yva, cal.predict(raw_va), b.contact_cost, b.customer_value, b.save_rate
        )
        p_te = cal.predict(final.booster.predict(Xte, num_iteration=final.best_iteration))
        metrics = binary_metrics(yte, p_te)
        decided = p_te >= threshold
        metrics["value_per_1000_at_threshold"] = float(
            (yte[decided] * b.save_rate * b.customer_value - b.contact_cost).sum()
            / max(len(yte), 1)
            * 1000
        )
        metrics["contacted_share"] = float(decided.mean()) if len(decided) else 0.0
        from training.oracle import churn_oracle_auc

        oracle = churn_oracle_auc(ds, df.loc[sp.test], cfg.label) if cfg.spec == "churn" else None
        if oracle is not None:
            metrics["oracle_roc_auc"] = oracle
        mlflow.log_params({f"best_{k}": v for k, v in tres.best_params.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_metrics(
            {
                "best_valid_score": tres.best_value,
                "best_iteration": final.best_iteration,
                "threshold": threshold,
            }
        )
        importance = dict(
            zip(feats, final.booster.feature_importance("gain").tolist(), strict=True)
        )
        version = _log_and_register(
            cfg, settings, client, final, pre, cal, threshold, df, feats, sp, y, metrics, importance
        )
        run_id = parent.info.run_id
    registry.move_alias(
        settings, client, cfg.model_name, registry.CHALLENGER, version, metrics, "newly trained"
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
        metrics,
        threshold,
        tres,
        time.perf_counter() - t0,
        oracle,
        promotion,
    )


def _log_and_register(
    cfg: ModelConfig,
    settings: Settings,
    client: Any,
    final: Any,
    pre: FramePreprocessor,
    cal: Calibrator,
    threshold: float,
    df: pd.DataFrame,
    feats: list[str],
    sp: Any,
    y: np.ndarray,
    metrics: dict[str, float],
    importance: dict[str, float],
) -> str:
    """Log plots, test set, the pyfunc model; register it; return the new version."""
    import mlflow
    from mlflow.models import infer_signature

    from training.plots import binary_plots
    from training.pyfunc import BinaryModel, Bundle, save_bundle
    from training.registry import TEST_SET
    from training.tracking import PIP_REQUIREMENTS

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        p_te = cal.predict(final.booster.predict(pre.transform(df.loc[sp.test, feats])))
        for p in binary_plots(y[sp.test], p_te, importance, d / "plots"):
            mlflow.log_artifact(str(p), "plots")
        (d / "eval").mkdir()
        # every column of the test rows (not only this model's inputs), so that any model of
        # the same FeatureService can be scored on it at promotion time
        test = df.loc[sp.test, [c for c in df.columns if c != cfg.label]].copy()
        test["__label__"] = y[sp.test]
        test.to_parquet(d / "eval" / "test_set.parquet", index=False)
        mlflow.log_artifact(str(d / "eval" / "test_set.parquet"), str(Path(TEST_SET).parent))
        (d / "eval" / "importance.json").write_text(json.dumps(importance))
        mlflow.log_artifact(str(d / "eval" / "importance.json"), "eval")
        bundle = save_bundle(
            d / "bundle",
            final.booster,
            pre,
            cal,
            threshold,
            cfg.reason_codes,
            {"model": cfg.model_name, "feature_service": cfg.feature_service, "label": cfg.label},
        )
        example = df.loc[sp.train, feats].head(5)
        out = Bundle(bundle).score(example)
        signature = infer_signature(example, out)
        t_log = time.perf_counter()
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=BinaryModel(),
            artifacts={"bundle": str(bundle)},
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )
        mlflow.log_metric("log_model_seconds", time.perf_counter() - t_log)
    mv = mlflow.register_model(info.model_uri, cfg.model_name, tags={"wattwise.spec": cfg.spec})
    client.set_model_version_tag(
        cfg.model_name, mv.version, "test_roc_auc", f"{metrics['roc_auc']:.4f}"
    )
    return str(mv.version)
