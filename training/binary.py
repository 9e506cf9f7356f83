"""The binary model spec (churn on any source): LightGBM, calibration, EV threshold, reasons.

Tuning and the final model both call :func:`training.estimators.fit_lightgbm` on datasets
binned once. A time split validates on the snapshot after training; a stratified split (one
snapshot, e.g. PowerCo) tunes on k-fold CV over train+valid. The final booster is calibrated
on validation (isotonic by default), the decision threshold maximises the expected value of a
retention contact on validation, and test metrics sit next to the oracle's on synthetic data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.estimators import Calibrator, LgbData, fit_lightgbm
from training.metrics import best_threshold, binary_metrics, per_snapshot_auc
from training.spec import Evaluation, Package
from training.tabular import TabularSpec

if TYPE_CHECKING:
    from training.config import TabularConfig
    from training.spec import TabularPrepared
    from training.tuning import FitFn

# the true probability of the label on the test rows (dataset folder, rows, truth column),
# or None where the dataset has no truth (real data)
Oracle = Callable[..., "np.ndarray | None"]

LABEL = "__label__"


@dataclass
class BinaryFit:
    booster: Any
    best_iteration: int
    calibrator: Calibrator
    threshold: float


class BinarySpec(TabularSpec):
    """Churn (or any "does X happen within the horizon") on one label column.

    ``oracle``: the true probabilities on the synthetic utility (churn's), reported beside
    the model's test metrics; None for a kind without truth.
    """

    def __init__(self, oracle: Oracle | None = None) -> None:
        self._data: LgbData | None = None
        self.oracle = oracle

    def label_columns(self, df: pd.DataFrame, cfg: TabularConfig) -> list[str]:
        return [self._label(cfg)]

    def split_target(self, df: pd.DataFrame, cfg: TabularConfig) -> np.ndarray:
        return df[self._label(cfg)].astype(float).to_numpy()

    @staticmethod
    def _label(cfg: TabularConfig) -> str:
        if not cfg.label:
            from wattwise.errors import ConfigError

            raise ConfigError(f"{cfg.name}: label: a binary model needs its label column")
        return cfg.label

    def _arrays(self, prep: TabularPrepared, cfg: TabularConfig) -> tuple[np.ndarray, LgbData]:
        y = self.split_target(prep.df, cfg)
        if self._data is None:
            sp = prep.split
            w = None if prep.weight is None else prep.weight[sp.train]
            self._data = LgbData.build(
                prep.X[sp.train], y[sp.train], prep.X[sp.valid], y[sp.valid], weight=w
            )
        return y, self._data

    def objective(self, prep: TabularPrepared, cfg: TabularConfig) -> FitFn:
        y, data = self._arrays(prep, cfg)
        budget: dict[str, Any] = {
            "n_jobs": cfg.tuning.n_jobs_lightgbm,
            "max_rounds": cfg.tuning.max_rounds,
            "early_stopping": cfg.tuning.early_stopping,
        }
        if cfg.split.kind == "stratified":
            from sklearn.model_selection import StratifiedKFold

            sp = prep.split
            pool = sp.train | sp.valid
            Xp, yp = prep.X[pool], y[pool]
            kfold = StratifiedKFold(cfg.split.folds, shuffle=True, random_state=cfg.tuning.seed)
            folds = [
                LgbData.build(Xp.iloc[a], yp[a], Xp.iloc[b], yp[b]) for a, b in kfold.split(Xp, yp)
            ]

            def fit_cv(params: dict[str, Any], report: Any) -> float:
                scores = []
                for k, fold in enumerate(folds):
                    r = fit_lightgbm(
                        {**cfg.estimator, **params}, None, None, None, None, data=fold, **budget
                    )
                    scores.append(r.valid_score)
                    if report is not None:
                        report(k + 1, float(np.mean(scores)))
                return float(np.mean(scores))

            return fit_cv

        def fit_holdout(params: dict[str, Any], report: Any) -> float:
            r = fit_lightgbm(
                {**cfg.estimator, **params},
                None,
                None,
                None,
                None,
                data=data,
                report=report,
                **budget,
            )
            return r.valid_score

        return fit_holdout

    def fit(self, prep: TabularPrepared, cfg: TabularConfig, params: dict[str, Any]) -> BinaryFit:
        y, data = self._arrays(prep, cfg)
        sp = prep.split
        final = fit_lightgbm(
            params, None, None, None, None, data=data, n_jobs=cfg.tuning.n_jobs_lightgbm
        )
        raw_va = final.booster.predict(prep.X[sp.valid], num_iteration=final.best_iteration)
        cal = Calibrator(cfg.calibration).fit(raw_va, y[sp.valid])
        b = cfg.business
        threshold, _ = best_threshold(
            y[sp.valid], cal.predict(raw_va), b.contact_cost, b.customer_value, b.save_rate
        )
        return BinaryFit(final.booster, final.best_iteration, cal, threshold)

    def predict(self, prep: TabularPrepared, fitted: BinaryFit, rows: np.ndarray) -> np.ndarray:
        raw = fitted.booster.predict(prep.X[rows], num_iteration=fitted.best_iteration)
        return np.asarray(fitted.calibrator.predict(raw), dtype=float)

    def evaluate(self, prep: TabularPrepared, cfg: TabularConfig, fitted: BinaryFit) -> Evaluation:
        from training.metrics import auc_difference_se

        y = self.split_target(prep.df, cfg)
        te = prep.split.test
        yte, p_te = y[te], self.predict(prep, fitted, te)
        m = binary_metrics(yte, p_te)
        b = cfg.business
        decided = p_te >= fitted.threshold
        m["value_per_1000_at_threshold"] = float(
            (yte[decided] * b.save_rate * b.customer_value - b.contact_cost).sum()
            / max(len(yte), 1)
            * 1000
        )
        m["contacted_share"] = float(decided.mean()) if len(decided) else 0.0
        m["threshold"] = fitted.threshold
        m["best_iteration"] = float(fitted.best_iteration)
        snaps = prep.df.loc[te, "event_timestamp"].to_numpy()
        m["roc_auc_within_snapshot"] = per_snapshot_auc(yte, p_te, snaps)
        details: dict[str, Any] = {"threshold": fitted.threshold, "oracle_auc": None}
        oracle = self.oracle
        p_true = oracle(prep.dataset_dir, prep.df.loc[te]) if oracle is not None else None
        if p_true is not None and np.isfinite(p_true).all() and len(np.unique(yte)) == 2:
            from sklearn.metrics import roc_auc_score

            m["oracle_roc_auc"] = float(roc_auc_score(yte, p_true))
            m["oracle_roc_auc_within_snapshot"] = per_snapshot_auc(yte, p_true, snaps)
            m["oracle_gap"] = m["oracle_roc_auc"] - m["roc_auc"]
            m["oracle_gap_within_snapshot"] = (
                m["oracle_roc_auc_within_snapshot"] - m["roc_auc_within_snapshot"]
            )
            m["oracle_gap_se"] = auc_difference_se(yte, p_true, p_te)
            details["oracle_auc"] = m["oracle_roc_auc"]
            for kind in ("realised", "held"):
                assert oracle is not None
                p_k = oracle(prep.dataset_dir, prep.df.loc[te], f"p_churn_90d_{kind}")
                if p_k is not None and np.isfinite(p_k).all():
                    m[f"oracle_{kind}_roc_auc"] = float(roc_auc_score(yte, p_k))
        headline: dict[str, float] = {
            k: m[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "rows") if k in m
        }
        return Evaluation(headline, m, details)

    def package(
        self,
        prep: TabularPrepared,
        cfg: TabularConfig,
        fitted: BinaryFit,
        ev: Evaluation,
        tmp: Path,
    ) -> Package:
        from training.plots import binary_plots
        from training.pyfunc import BinaryModel, Bundle, save_bundle

        sp, te = prep.split, prep.split.test
        y = self.split_target(prep.df, cfg)
        importance = dict(
            zip(prep.feats, fitted.booster.feature_importance("gain").tolist(), strict=True)
        )
        files: dict[Path, str] = {
            p: "plots"
            for p in binary_plots(y[te], self.predict(prep, fitted, te), importance, tmp / "plots")
        }
        (tmp / "importance.json").write_text(json.dumps(importance))
        files[tmp / "importance.json"] = "eval"
        # every column of the test rows (not only this model's inputs), so that any model of
        # the same FeatureService can be scored on it at promotion time
        label = self._label(cfg)
        test = prep.df.loc[te, [c for c in prep.df.columns if c != label]].copy()
        test[LABEL] = y[te]
        bundle = save_bundle(
            tmp / "bundle",
            fitted.booster,
            prep.pre,
            fitted.calibrator,
            fitted.threshold,
            cfg.reason_codes,
            {"model": cfg.model_name, "feature_service": cfg.feature_service, "label": label},
        )
        example = prep.df.loc[sp.train, prep.feats].head(5)
        return Package(
            python_model=BinaryModel(),
            artifacts={"bundle": str(bundle)},
            example=example,
            example_output=Bundle(bundle).score(example),
            test_set=test,
            predict=lambda X: Bundle(bundle).score(X, with_reasons=False)["probability"].to_numpy(),
            reference=prep.df.loc[te, prep.feats],
            files=files,
            tags={"test_roc_auc": f"{ev.headline['roc_auc']:.4f}"},
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        from training.registry import model_inputs

        y = test[LABEL].to_numpy(dtype=float)
        p = np.asarray(model.predict(model_inputs(model, test))["probability"], dtype=float)
        return binary_metrics(y, p)

    def render(self, ev: Evaluation) -> list[str]:
        m = ev.logged
        lines = [
            f"  test: ROC-AUC {m['roc_auc']:.4f} (within snapshot {m['roc_auc_within_snapshot']:.4f})"
            f"  PR-AUC {m['pr_auc']:.4f}  lift@10% {m['lift_top_decile']:.2f}  "
            f"Brier {m['brier']:.4f}  ECE {m['ece']:.4f}  rows {int(m['rows']):,}",
            f"  decision threshold {m['threshold']:.3f} (max expected value on validation)",
        ]
        if "oracle_roc_auc" in m:
            lines.append(
                f"  oracle ROC-AUC (true probabilities, same rows) {m['oracle_roc_auc']:.4f} "
                f"(within snapshot {m['oracle_roc_auc_within_snapshot']:.4f}); gap "
                f"{m['oracle_gap']:+.4f} ± {m['oracle_gap_se']:.4f} (within snapshot "
                f"{m['oracle_gap_within_snapshot']:+.4f})"
            )
        if "oracle_realised_roc_auc" in m and "oracle_held_roc_auc" in m:
            lines.append(
                f"  (knowing the window's events as they turned out: {m['oracle_realised_roc_auc']:.4f},"
                f" an upper bound; holding the snapshot's drivers: {m['oracle_held_roc_auc']:.4f},"
                " not a bound)"
            )
        return lines
