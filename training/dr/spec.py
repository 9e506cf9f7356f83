"""The DR-response spec of the one training pipeline: a LightGBM regressor of the settled
reduction of called customers, and targeting scored against the truth.

- **Data**: participants of every settled event (``training.dr.data.event_rows``), with the
  true effects when the dataset has them (the synthetic utility).
- **Split** by event start: the last events test, the ones before validate.
- **Fit**: :func:`training.dr.models.fit_regressor` on called rows, for every trial and the
  final model; the residual spread on validation becomes the model's ``sd_kw``.
- **Evaluation**: RMSE against the settled reduction and the mean predictor; on the
  synthetic utility also against the true effect, and the Qini of targeting by the response
  model, a T-learner and a DR-learner per test event (training.dr.response).
- **Gate** (the registry re-scores candidate and champion on the called test rows logged
  with the candidate): RMSE, MAE, R², Spearman and ``rmse_skill`` = 1 - RMSE / RMSE of the
  training mean (the floor "beats the mean predictor" is ``rmse_skill > 0``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.spec import Evaluation, Package, Prepared
from wattwise.errors import DataError, EmptyResultError

if TYPE_CHECKING:
    from training.dr.models import RegFit
    from training.kinds.base import Kind
    from training.kinds.dr_response import DRResponseConfig
    from training.tuning import FitFn

log = logging.getLogger(__name__)
NON_FEATURES = ["event_id", "called", "start", "reduction_kw", "baseline_kw", "true_reduction_kw"]
BASELINE = "__mean_prediction__"  # test-set column: the training mean (the mean predictor)


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R², Spearman correlation and the bias (mean prediction - mean target)."""
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) < 2:
        raise DataError(f"{len(y)} scorable rows: need at least 2 to compare regression models")
    err = pred - y
    var = float(np.var(y))
    rank_y = pd.Series(y).rank().to_numpy()
    rank_p = pd.Series(pred).rank().to_numpy()
    spear = float(np.corrcoef(rank_y, rank_p)[0, 1]) if np.std(rank_p) > 0 else 0.0
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float(np.mean(err**2)) / var if var > 0 else float("nan"),
        "spearman": spear,
        "bias": float(err.mean()),
        "rows": float(len(y)),
    }


def with_skill(m: dict[str, float], y: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """``m`` with the mean predictor's RMSE and ``rmse_skill`` = 1 - RMSE / that RMSE."""
    ok = np.isfinite(y) & np.isfinite(baseline)
    base = float(np.sqrt(np.mean((baseline[ok] - y[ok]) ** 2))) if ok.any() else float("nan")
    return {**m, "rmse_mean_predictor": base, "rmse_skill": 1.0 - m["rmse"] / base if base else 0.0}


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


@dataclass(kw_only=True)
class DRPrepared(Prepared):
    df: pd.DataFrame  # event rows with an outcome (called and control)
    X: pd.DataFrame  # preprocessed features of every row
    y: np.ndarray  # settled reduction (kW)
    feats: list[str]
    pre: Any  # FramePreprocessor fitted on the called training rows
    train: np.ndarray  # masks over the rows
    valid: np.ndarray
    test: np.ndarray
    called: np.ndarray
    truth: bool  # true effects are known (synthetic utility)


@dataclass
class DRFit:
    booster: Any
    best_iteration: int
    residual_sd: float
    params: dict[str, Any]


class DRResponseSpec:
    """Expected kW reduction of an enrolled customer for a proposed event."""

    def load(self, dataset_dir: Path, cfg: DRResponseConfig, kind: Kind) -> pd.DataFrame:
        from features.dr.config import load_dr_config
        from features.dr.oracle import has_truth
        from training.dr.data import event_rows

        rows = event_rows(dataset_dir, load_dr_config())
        if has_truth(dataset_dir):
            from training.dr.oracle import with_true_effects

            rows = with_true_effects(dataset_dir, rows)
        return rows

    def prepare(self, df: pd.DataFrame, cfg: DRResponseConfig, ds: Path) -> DRPrepared:
        from training.data import feature_columns, fingerprint
        from training.estimators import FramePreprocessor

        label = cfg.label or "reduction_kw"
        if label not in df:
            raise DataError(f"the DR training rows have no {label!r} (settle the events first)")
        df = df[df[label].notna()].reset_index(drop=True)
        if df.empty:
            raise EmptyResultError(
                f"the DR training set of dataset {ds.name} has no settled event rows with a "
                f"{label!r}: nothing to train on (settle the events first)"
            )
        feats = [c for c in feature_columns(df, cfg, NON_FEATURES) if c not in NON_FEATURES]
        tr, va, te = event_split(df, cfg.split.test_share, cfg.split.valid_share)
        called = df.called.to_numpy(bool)
        if (te & called).sum() == 0 or (va & called).sum() == 0:
            raise DataError("no called customers in the validation or test events")
        pre = FramePreprocessor().fit(df.loc[tr & called, feats])
        truth = "true_reduction_kw" in df and bool(df.true_reduction_kw.notna().any())
        return DRPrepared(
            dataset_dir=ds,
            fingerprint=fingerprint(df[[*feats, label]]),
            params={
                "rows": len(df),
                "training_rows": len(df),
                "n_features": len(feats),
                "label": label,
                "split": f"by event start: test {cfg.split.test_share:.0%} of events, "
                f"valid {cfg.split.valid_share:.0%} before them",
            },
            df=df,
            X=pre.transform(df[feats]),
            y=df[label].to_numpy(float),
            feats=feats,
            pre=pre,
            train=tr,
            valid=va,
            test=te,
            called=called,
            truth=truth,
        )

    def _fit(
        self, prep: DRPrepared, cfg: DRResponseConfig, params: dict[str, Any], report: Any
    ) -> RegFit:
        from training.dr.models import fit_regressor

        ctr, cva = prep.train & prep.called, prep.valid & prep.called
        return fit_regressor(
            params,
            prep.X[ctr],
            prep.y[ctr],
            prep.X[cva],
            prep.y[cva],
            n_jobs=cfg.tuning.n_jobs_lightgbm,
            report=report,
        )

    def objective(self, prep: DRPrepared, cfg: DRResponseConfig) -> FitFn:
        def fit_trial(params: dict[str, Any], report: Any) -> float:
            return float(self._fit(prep, cfg, {**cfg.estimator, **params}, report).valid_rmse)

        return fit_trial

    def fit(self, prep: DRPrepared, cfg: DRResponseConfig, params: dict[str, Any]) -> DRFit:
        final = self._fit(prep, cfg, params, None)
        cva = prep.valid & prep.called
        resid = final.booster.predict(prep.X[cva], num_iteration=final.best_iteration)
        return DRFit(
            final.booster, final.best_iteration, float(np.std(resid - prep.y[cva])), params
        )

    def _predict(self, prep: DRPrepared, fitted: DRFit) -> np.ndarray:
        return np.asarray(
            fitted.booster.predict(prep.X, num_iteration=fitted.best_iteration), float
        )

    def evaluate(self, prep: DRPrepared, cfg: DRResponseConfig, fitted: DRFit) -> Evaluation:
        from training.dr.response import score_targeting

        df, y = prep.df, prep.y
        ctr, cte = prep.train & prep.called, prep.test & prep.called
        pred = self._predict(prep, fitted)
        mean = float(y[ctr].mean())
        head = with_skill(regression_metrics(y[cte], pred[cte]), y[cte], np.full(cte.sum(), mean))
        m: dict[str, float] = {
            **head,
            "test_rows": float(cte.sum()),
            "test_events": float(df.loc[prep.test, "event_id"].nunique()),
            "rmse_settled": head["rmse"],
            "rmse_settled_mean": head["rmse_mean_predictor"],
            "residual_sd_kw": fitted.residual_sd,
        }
        targeting: dict[str, dict[str, float]] = {}
        if prep.truth:
            tt = df.true_reduction_kw.to_numpy(float)
            ok = cte & np.isfinite(tt)
            m |= {
                "rmse_true": float(np.sqrt(np.mean((pred[ok] - tt[ok]) ** 2))),
                "rmse_true_mean": float(np.sqrt(np.mean((mean - tt[ok]) ** 2))),
                "corr_true": float(np.corrcoef(pred[ok], tt[ok])[0, 1]),
                "sum_pred_kw": float(pred[ok].sum()),
                "sum_true_kw": float(tt[ok].sum()),
                "sum_settled_kw": float(y[ok].sum()),
            }
            targeting = score_targeting(
                df,
                prep.X,
                y,
                prep.called,
                prep.train | prep.valid,
                prep.test,
                fitted.params,
                pred,
                cfg.tuning.n_jobs_lightgbm,
            )
            for name, q in targeting.items():
                m[f"qini_share_{name}"] = q["share_of_oracle"]
        headline = {k: head[k] for k in ("rmse", "rmse_mean_predictor", "rmse_skill", "spearman")}
        return Evaluation(headline, m, {"targeting": targeting, "train_mean": mean})

    def package(
        self, prep: DRPrepared, cfg: DRResponseConfig, fitted: DRFit, ev: Evaluation, tmp: Path
    ) -> Package:
        from training.dr.models import DRResponseModel, ResponseBundle, save_bundle

        bundle = save_bundle(
            tmp / "bundle",
            fitted.booster,
            prep.pre,
            {"residual_sd_kw": fitted.residual_sd, "model": cfg.model_name, "label": cfg.label},
        )
        ctr, cte = prep.train & prep.called, prep.test & prep.called
        example = prep.df.loc[ctr, prep.feats].head(5)
        loaded = ResponseBundle(bundle)
        # the promotion gate re-scores candidate and champion on these called test rows
        keep = ["event_id", "customer_id", *prep.feats, "reduction_kw"]
        test = prep.df.loc[cte, [c for c in keep if c in prep.df.columns]].copy()
        test[BASELINE] = ev.details["train_mean"]
        return Package(
            python_model=DRResponseModel(),
            artifacts={"bundle": str(bundle)},
            example=example,
            example_output=loaded.predict(example),
            test_set=test,
            predict=lambda X: loaded.predict(X)["expected_kw"].to_numpy(),
            reference=prep.df.loc[cte, prep.feats],
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        """Regression metrics of a loaded pyfunc on the logged called test rows."""
        from training.registry import model_inputs

        label = "reduction_kw"
        if label not in test.columns:
            raise DataError(f"the logged test set has no {label!r} column")
        out = model.predict(model_inputs(model, test))
        pred = np.asarray(out["expected_kw"] if isinstance(out, pd.DataFrame) else out, float)
        y = test[label].to_numpy(float)
        m = regression_metrics(y, pred.ravel())
        if BASELINE in test:
            m = with_skill(m, y, test[BASELINE].to_numpy(float))
        return m

    def render(self, ev: Evaluation) -> list[str]:
        m = ev.logged
        lines = [
            f"  test ({int(m['test_rows'])} called customer-events, {int(m['test_events'])} "
            f"events): RMSE vs settled {m['rmse_settled']:.3f} kW (mean predictor "
            f"{m['rmse_settled_mean']:.3f}, skill {m['rmse_skill']:+.3f})  Spearman "
            f"{m['spearman']:.3f}  bias {m['bias']:+.4f}"
        ]
        if "rmse_true" in m:
            lines.append(
                f"  vs true effect: RMSE {m['rmse_true']:.3f} kW (mean predictor "
                f"{m['rmse_true_mean']:.3f}), corr {m['corr_true']:.3f}; portfolio: predicted "
                f"{m['sum_pred_kw']:.1f} kW, true {m['sum_true_kw']:.1f} kW, settled "
                f"{m['sum_settled_kw']:.1f} kW"
            )
        targeting = ev.details.get("targeting") or {}
        if targeting:
            lines.append(
                "  targeting, Qini per test event against the true effects (gain over random):"
            )
            for name, q in targeting.items():
                lines.append(
                    f"    {name:<18} Qini {q['qini_model']:.4f}  oracle {q['qini_oracle']:.4f}  "
                    f"random {q['qini_random']:+.4f}  share of oracle {q['share_of_oracle']:.1%}"
                )
        return lines
