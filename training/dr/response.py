"""DR response model and targeting: train, tune, evaluate (against truth), register.

- **Response**: expected kW reduction of an enrolled customer for a proposed event, a
  LightGBM on called rows (target: settled reduction), tuned with :func:`training.tuning.tune`
  calling :func:`fit_regressor`, logged to MLflow and registered as ``dr_response``
  (@champion when there is none yet, else @challenger).
- **Targeting**: T- and DR-learner uplift on called and control rows; ranked per event and
  scored by Qini against the true effects (synthetic utility), the oracle and random.

Split by event time: the last 25 % of events are the test set, the 15 % before validate.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from features.dr.config import DRConfig
from training.config import ModelConfig, _Cfg
from training.data import feature_columns, fingerprint
from training.dr.data import event_rows
from training.dr.models import (
    DRResponseModel,
    ResponseBundle,
    dr_learner,
    fit_regressor,
    save_bundle,
    t_learner,
)
from training.estimators import FramePreprocessor
from wattwise.config import read_yaml, validate
from wattwise.errors import DataError
from wattwise.paths import configs_dir

if TYPE_CHECKING:
    from training.tuning import TuneResult
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
NON_FEATURES = ["event_id", "called", "start", "reduction_kw", "baseline_kw", "true_reduction_kw"]


class RegressionMetric(_Cfg):
    name: Literal["rmse"] = "rmse"
    direction: Literal["minimize"] = "minimize"


class DRResponseConfig(ModelConfig):
    """``configs/models/dr_response.yaml``: a ModelConfig for the regression spec
    ``dr_response`` (training/dr/spec.py, in training.spec.SPECS so the registry gates it)."""

    spec: Literal["dr_response"] = "dr_response"  # type: ignore[assignment]
    metric: RegressionMetric = RegressionMetric()  # type: ignore[assignment]


def load_response_config(path: Path | None = None) -> DRResponseConfig:
    p = path or configs_dir() / "models" / "dr_response.yaml"
    return validate(DRResponseConfig, read_yaml(p), str(p))


@dataclass
class ResponseResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    tune: TuneResult
    seconds: float
    alias: str
    targeting: dict[str, dict[str, float]] = field(default_factory=dict)

    def render(self) -> str:
        m = self.metrics
        lines = [
            f"{self.model_name} v{self.version} @{self.alias} (run {self.run_id[:8]}) in {self.seconds:.1f} s; "
            f"{self.tune.trials_run} new trials, best valid RMSE {self.tune.best_value:.4f}",
            f"  test ({int(m['test_rows'])} called customer-events, {int(m['test_events'])} events): "
            f"RMSE vs settled {m['rmse_settled']:.3f} kW (mean predictor {m['rmse_settled_mean']:.3f})",
        ]
        if "rmse_true" in m:
            lines.append(
                f"  vs true effect: RMSE {m['rmse_true']:.3f} kW (mean predictor {m['rmse_true_mean']:.3f}), "
                f"corr {m['corr_true']:.3f}; portfolio: predicted {m['sum_pred_kw']:.1f} kW, "
                f"true {m['sum_true_kw']:.1f} kW, settled {m['sum_settled_kw']:.1f} kW"
            )
        if self.targeting:
            lines.append(
                "  targeting, Qini per test event against the true effects (gain over random):"
            )
            for name, q in self.targeting.items():
                lines.append(
                    f"    {name:<18} Qini {q['qini_model']:.4f}  oracle {q['qini_oracle']:.4f}  "
                    f"random {q['qini_random']:+.4f}  share of oracle {q['share_of_oracle']:.1%}"
                )
        return "\n".join(lines)


def event_split(
    rows: pd.DataFrame, test_share: float = 0.25, valid_share: float = 0.15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks train/valid/test by event start time."""
    ev = rows.groupby("event_id").start.min().sort_values()
    n = len(ev)
    if n < 4:
        raise DataError(f"{n} events: need at least 4 for a train/valid/test split by time")
    n_test = max(1, int(round(n * test_share)))
    n_valid = max(1, int(round(n * valid_share)))
    test_ev = set(ev.index[n - n_test :])
    valid_ev = set(ev.index[n - n_test - n_valid : n - n_test])
    te = rows.event_id.isin(test_ev).to_numpy()
    va = rows.event_id.isin(valid_ev).to_numpy()
    return ~(te | va), va, te


def qini_by_event(
    frame: pd.DataFrame, score: str, effect: str = "true_reduction_kw"
) -> dict[str, float]:
    """Sum over events of the Qini areas (model, oracle, random) of ranking called customers."""
    from training.dr.oracle import qini_against_truth

    parts = [
        qini_against_truth(g[score].to_numpy(float), g[effect].to_numpy(float), seed=i)
        for i, (_, g) in enumerate(frame.groupby("event_id"))  # events, not customers
    ]
    tot = {
        k: float(sum(p[k] for p in parts))
        for k in ("qini_model", "qini_oracle", "qini_random", "rows")
    }
    tot["share_of_oracle"] = (
        tot["qini_model"] / tot["qini_oracle"] if tot["qini_oracle"] > 0 else float("nan")
    )
    return tot


def train_response(
    cfg: DRResponseConfig,
    dr_cfg: DRConfig,
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    trials: int | None = None,
    rows: pd.DataFrame | None = None,
    with_truth: bool = True,
) -> ResponseResult:
    """Train, tune, evaluate, log and register the response model; score targeting."""
    import mlflow
    from mlflow.models import infer_signature

    from training import registry, tracking
    from training.tuning import tune

    t0 = time.perf_counter()
    ds = dataset_dir or settings.data_dir / cfg.dataset
    df = rows if rows is not None else event_rows(ds, dr_cfg)
    if with_truth:
        from training.dr.oracle import with_true_effects

        df = with_true_effects(ds, df)
    df = df[df.reduction_kw.notna()].reset_index(drop=True)
    feats = [c for c in feature_columns(df, cfg, NON_FEATURES) if c not in NON_FEATURES]
    tr, va, te = event_split(df)
    called = df.called.to_numpy(bool)
    y = df.reduction_kw.to_numpy(float)
    pre = FramePreprocessor().fit(df.loc[tr & called, feats])
    X = pre.transform(df[feats])
    n_jobs = cfg.tuning.n_jobs_lightgbm
    ctr, cva, cte = tr & called, va & called, te & called
    if cte.sum() == 0 or cva.sum() == 0:
        raise DataError("no called customers in the validation or test events")
    client = tracking.setup(settings)
    tracking.experiment(settings, cfg.name)
    fp = fingerprint(df[[*feats, "reduction_kw"]])
    study = f"{cfg.name}-{ds.name}-{fp}"

    def fit_trial(params: dict[str, Any], report: Any) -> float:
        return fit_regressor(
            {**cfg.estimator, **params},
            X[ctr],
            y[ctr],
            X[cva],
            y[cva],
            n_jobs=n_jobs,
            report=report,
        ).valid_rmse

    with mlflow.start_run(run_name=f"{cfg.name}-{fp[:8]}") as run:
        mlflow.log_params(
            {
                "dataset": ds.name,
                "feature_service": cfg.feature_service,
                "training_set_fingerprint": fp,
                "rows": len(df),
                "n_features": len(feats),
                "settlement_method": dr_cfg.settlement.method,
            }
        )
        mlflow.set_tags(
            {"wattwise.spec": cfg.spec, "wattwise.model": cfg.model_name, "study": study}
        )

        def log_trial(t: Any) -> None:
            with mlflow.start_run(run_name=f"trial-{t.number}", nested=True):
                mlflow.log_params(t.params)
                if t.value is not None:
                    mlflow.log_metric("valid_rmse", t.value)

        tres = tune(cfg, settings, fit_trial, study, trials=trials, log_trial=log_trial)  # type: ignore[arg-type]
        best = {**cfg.estimator, **tres.best_params}
        final = fit_regressor(best, X[ctr], y[ctr], X[cva], y[cva], n_jobs=n_jobs)
        resid_sd = float(
            np.std(final.booster.predict(X[cva], num_iteration=final.best_iteration) - y[cva])
        )
        pred = np.asarray(final.booster.predict(X, num_iteration=final.best_iteration), float)
        metrics = {
            "test_rows": float(cte.sum()),
            "test_events": float(df.loc[te, "event_id"].nunique()),
            "rmse_settled": float(np.sqrt(np.mean((pred[cte] - y[cte]) ** 2))),
            "rmse_settled_mean": float(np.sqrt(np.mean((y[ctr].mean() - y[cte]) ** 2))),
            "residual_sd_kw": resid_sd,
        }
        targeting: dict[str, dict[str, float]] = {}
        if with_truth and df.true_reduction_kw.notna().any():
            tt = df.true_reduction_kw.to_numpy(float)
            ok = cte & np.isfinite(tt)
            metrics |= {
                "rmse_true": float(np.sqrt(np.mean((pred[ok] - tt[ok]) ** 2))),
                "rmse_true_mean": float(np.sqrt(np.mean((y[ctr].mean() - tt[ok]) ** 2))),
                "corr_true": float(np.corrcoef(pred[ok], tt[ok])[0, 1]),
                "sum_pred_kw": float(pred[ok].sum()),
                "sum_true_kw": float(tt[ok].sum()),
                "sum_settled_kw": float(y[ok].sum()),
            }
            targeting = score_targeting(df, X, y, called, tr | va, te, best, pred, n_jobs)
            for name, q in targeting.items():
                metrics[f"qini_share_{name}"] = q["share_of_oracle"]
        mlflow.log_params({f"best_{k}": v for k, v in tres.best_params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            bundle = save_bundle(
                Path(tmp) / "bundle",
                final.booster,
                pre,
                {"residual_sd_kw": resid_sd, "model": cfg.model_name, "label": cfg.label},
            )
            example = df.loc[ctr, feats].head(5)
            sig = infer_signature(example, ResponseBundle(bundle).predict(example))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=DRResponseModel(),
                artifacts={"bundle": str(bundle)},
                signature=sig,
                input_example=example,
                pip_requirements=tracking.PIP_REQUIREMENTS,
            )
            # the promotion gate re-scores candidate and champion on these called test rows
            test_set = Path(tmp) / Path(registry.TEST_SET).name
            keep = ["event_id", "customer_id", *feats, "reduction_kw"]
            df.loc[cte, [c for c in keep if c in df.columns]].to_parquet(test_set, index=False)
            mlflow.log_artifact(str(test_set), str(Path(registry.TEST_SET).parent))
        mv = mlflow.register_model(info.model_uri, cfg.model_name, tags={"wattwise.spec": cfg.spec})
        version = str(mv.version)
        run_id = run.info.run_id
    first = registry.alias_version(client, cfg.model_name, registry.CHAMPION) is None
    alias = registry.CHAMPION if first else registry.CHALLENGER
    registry.move_alias(
        settings,
        client,
        cfg.model_name,
        alias,
        version,
        metrics,
        "first champion: no model to compare with" if first else "newly trained",
    )
    return ResponseResult(
        cfg.model_name, version, run_id, metrics, tres, time.perf_counter() - t0, alias, targeting
    )


def score_targeting(
    df: pd.DataFrame,
    X: pd.DataFrame,
    y: np.ndarray,
    called: np.ndarray,
    fit_rows: np.ndarray,
    test_rows: np.ndarray,
    params: dict[str, Any],
    response_pred: np.ndarray,
    n_jobs: int,
) -> dict[str, dict[str, float]]:
    """Qini vs truth of the response model, a T-learner and a DR-learner on the test events."""
    Xf, yf, tf = X[fit_rows], y[fit_rows], called[fit_rows]
    m1, m0 = t_learner(params, Xf, yf, tf, n_jobs)
    Xt = X[test_rows]
    t_uplift = np.asarray(m1.predict(Xt), float) - np.asarray(m0.predict(Xt), float)
    drb = dr_learner(params, Xf, yf, tf, df.loc[fit_rows, "event_id"].to_numpy(), n_jobs)
    test = df.loc[test_rows, ["event_id", "true_reduction_kw"]].assign(
        response=response_pred[test_rows], t_learner=t_uplift, dr_learner=drb.predict(Xt)
    )
    test = test[called[test_rows]]
    return {name: qini_by_event(test, name) for name in ("response", "t_learner", "dr_learner")}
