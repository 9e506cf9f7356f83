"""Program propensity and offer uplift: one response model and one uplift estimate per program.

Why one model per program (not one multi-output model): each program has its own eligible
population (an EV rate only for EV owners, solar only for houses), its own base rate and
drivers; separate boosters keep those apart, while sharing the pipeline, the tuned
hyper-parameters and one registered pyfunc.

- **Response** (probability of enrolling within 90 days, given the features and whether an
  offer was sent): LightGBM with the offer flag as a feature, calibrated on validation.
- **Uplift** (how much an offer moves that probability): a T-learner, two boosters fitted on
  offered and not-offered customers, ``uplift = p_offer(x) - p_no_offer(x)``. Offers are
  randomized, so the two groups are comparable. An arm with fewer than ``MIN_ARM_POSITIVES``
  enrollments falls back to the response model's ``p_offer - p_no_offer`` (S-learner).
  Evaluated by Qini from observed outcomes and, on the synthetic utility, against the true
  treatment effects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config import ModelConfig
from training.estimators import Calibrator, FramePreprocessor, fit_lightgbm
from training.metrics import binary_metrics, qini_coefficient, true_qini
from training.spec import Evaluation, Package, Prepared
from wattwise.errors import DataError

try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from training.tuning import FitFn

log = logging.getLogger(__name__)
OFFER = "__offered__"
MIN_ARM_POSITIVES = 20  # enrollments an uplift arm needs in training


@dataclass
class ProgramModel:
    response: Any
    treated: Any
    control: Any
    calibrator: Calibrator


def _program_rows(df: pd.DataFrame, program: str) -> np.ndarray:
    return df[f"enrolled_{program}"].notna().to_numpy()


def fit_program(
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    t: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    n_jobs: int,
    calibration: str,
    report: Any = None,
) -> tuple[ProgramModel, float]:
    """Fit the response model and the two uplift learners of one program (the training function)."""
    Xr = X.assign(**{OFFER: t.astype(float)})
    resp = fit_lightgbm(params, Xr[tr], y[tr], Xr[va], y[va], n_jobs=n_jobs, report=report)
    cal = Calibrator(calibration).fit(
        resp.booster.predict(Xr[va], num_iteration=resp.best_iteration), y[va]
    )
    learners: list[Any] = []
    for arm in (True, False):
        a_tr, a_va = tr & (t == arm), va & (t == arm)
        # an arm with a handful of enrollments gives a noisy booster whose difference is not
        # an effect (uplift +0.33 where p_offer is 0.002): fall back to the response model
        if y[a_tr].sum() < MIN_ARM_POSITIVES or len(np.unique(y[a_va])) < 2:
            learners.append(None)
            continue
        learners.append(
            fit_lightgbm(params, X[a_tr], y[a_tr], X[a_va], y[a_va], n_jobs=n_jobs).booster
        )
    return ProgramModel(resp.booster, learners[0], learners[1], cal), resp.valid_score


def predict_program(
    m: ProgramModel, X: pd.DataFrame, offered: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Response probability (for the given offer status, or both) and T-learner uplift."""
    out: dict[str, np.ndarray] = {}
    for name, flag in (("p_no_offer", 0.0), ("p_offer", 1.0)):
        out[name] = m.calibrator.predict(m.response.predict(X.assign(**{OFFER: flag})))
    if offered is not None:
        out["p"] = np.where(offered, out["p_offer"], out["p_no_offer"])
    if m.treated is not None and m.control is not None:
        out["uplift"] = m.treated.predict(X) - m.control.predict(X)
    else:
        out["uplift"] = out["p_offer"] - out["p_no_offer"]
    return out


class PropensityPyfunc(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: features in → per program p_no_offer, p_offer and uplift columns out."""

    def load_context(self, context: Any) -> None:
        import lightgbm as lgb

        root = Path(context.artifacts["bundle"])
        meta = json.loads((root / "meta.json").read_text())
        self.pre = FramePreprocessor.from_dict(meta["preprocessor"])
        self.programs: dict[str, ProgramModel] = {}
        for p, info in meta["programs"].items():
            load = lambda f: lgb.Booster(model_file=str(root / f)) if f else None  # noqa: E731
            self.programs[p] = ProgramModel(
                load(info["response"]),
                load(info["treated"]),
                load(info["control"]),
                Calibrator.from_dict(info["calibrator"]),
            )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        X = self.pre.transform(model_input)
        out = pd.DataFrame(index=model_input.index)
        for p, m in self.programs.items():
            r = predict_program(m, X, None)
            out[f"{p}_p_no_offer"] = r["p_no_offer"]
            out[f"{p}_p_offer"] = r["p_offer"]
            out[f"{p}_uplift"] = r["uplift"]
        return out


def evaluate_propensity(
    scores: pd.DataFrame, test: pd.DataFrame, programs: list[str]
) -> dict[str, float]:
    """Mean ROC-AUC over programs of the response probability for the offer actually received."""
    aucs = []
    for p in programs:
        rows = test[f"enrolled_{p}"].notna().to_numpy()
        if not rows.any() or f"{p}_p_offer" not in scores:
            continue
        offered = test.loc[rows, f"offered_{p}"].astype(bool).to_numpy()
        prob = np.where(
            offered, scores.loc[rows, f"{p}_p_offer"], scores.loc[rows, f"{p}_p_no_offer"]
        )
        aucs.append(
            binary_metrics(test.loc[rows, f"enrolled_{p}"].astype(float).to_numpy(), prob)[
                "roc_auc"
            ]
        )
    return {"roc_auc": float(np.nanmean(aucs)) if aucs else float("nan"), "brier": 0.0}


class PropensitySpec:
    """Propensity + uplift: one response model and a T-learner per program."""

    labels = "propensity"

    def _programs(self, df: pd.DataFrame, cfg: ModelConfig) -> list[str]:
        programs = [p for p in cfg.programs if f"enrolled_{p}" in df]
        if not programs:
            raise DataError(
                "the training set has no enrolled_<program> labels for the configured programs"
            )
        return programs

    def label_columns(self, df: pd.DataFrame, cfg: ModelConfig) -> list[str]:
        self._programs(df, cfg)
        return [c for c in df.columns if c.startswith(("enrolled_", "offered_"))]

    def split_target(self, df: pd.DataFrame, cfg: ModelConfig) -> np.ndarray:
        cols = [f"enrolled_{p}" for p in self._programs(df, cfg)]
        return df[cols].notna().any(axis=1).astype(float).to_numpy()

    @staticmethod
    def _data(df: pd.DataFrame, p: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = _program_rows(df, p)
        y = df[f"enrolled_{p}"].astype("boolean").fillna(False).astype(float).to_numpy()
        t = df[f"offered_{p}"].astype(bool).to_numpy()
        return rows, y, t

    def _fit_all(
        self, prep: Prepared, cfg: ModelConfig, params: dict[str, Any]
    ) -> tuple[dict[str, ProgramModel], list[float]]:
        sp, n_jobs = prep.split, cfg.tuning.n_jobs_lightgbm
        models, scores = {}, []
        for p in self._programs(prep.df, cfg):
            rows, y, t = self._data(prep.df, p)
            m, score = fit_program(
                params, prep.X, y, t, sp.train & rows, sp.valid & rows, n_jobs, cfg.calibration
            )
            models[p] = m
            scores.append(score)
        return models, scores

    def objective(self, prep: Prepared, cfg: ModelConfig) -> FitFn:
        def fit_trial(params: dict[str, Any], report: Any) -> float:
            return float(np.nanmean(self._fit_all(prep, cfg, {**cfg.estimator, **params})[1]))

        return fit_trial

    def fit(
        self, prep: Prepared, cfg: ModelConfig, params: dict[str, Any]
    ) -> dict[str, ProgramModel]:
        return self._fit_all(prep, cfg, params)[0]

    def evaluate(
        self, prep: Prepared, cfg: ModelConfig, fitted: dict[str, ProgramModel]
    ) -> Evaluation:
        from training.oracle import true_enrollment_probability, true_uplift

        per: dict[str, dict[str, float]] = {}
        df, ds = prep.df, prep.dataset_dir
        for p, m in fitted.items():
            rows, y, t = self._data(df, p)
            te = prep.split.test & rows
            pred = predict_program(m, prep.X[te], t[te])
            met = binary_metrics(y[te], pred["p"])
            met["qini_observed"] = qini_coefficient(pred["uplift"], t[te], y[te])
            test_rows = df.loc[te, ["customer_id", "event_timestamp", f"offered_{p}"]]
            p_true = true_enrollment_probability(ds, test_rows, p)
            if p_true is not None:
                ok = np.isfinite(p_true)  # truth exists where the generator deemed the row eligible
                met["truth_coverage"] = float(ok.mean())
                if ok.sum() > 0 and len(np.unique(y[te][ok])) == 2:
                    from sklearn.metrics import roc_auc_score

                    met["oracle_roc_auc"] = float(roc_auc_score(y[te][ok], p_true[ok]))
                    met["roc_auc_on_truth_rows"] = float(roc_auc_score(y[te][ok], pred["p"][ok]))
            tau = true_uplift(ds, test_rows, p)
            if tau is not None and np.isfinite(tau).any():
                ok = np.isfinite(tau)
                met["qini_true"] = true_qini(pred["uplift"][ok], tau[ok])
                met["qini_oracle"] = true_qini(tau[ok], tau[ok])
                met["qini_random"] = 0.0
                met["qini_share_of_oracle"] = (
                    met["qini_true"] / met["qini_oracle"]
                    if met["qini_oracle"] > 0
                    else float("nan")
                )
            per[p] = met
        mean_auc = float(np.nanmean([m["roc_auc"] for m in per.values()]))
        logged = {f"{p}_{k}": v for p, met in per.items() for k, v in met.items()}
        logged["roc_auc"] = mean_auc
        return Evaluation({"roc_auc": mean_auc}, logged, {"per_program": per})

    def package(
        self,
        prep: Prepared,
        cfg: ModelConfig,
        fitted: dict[str, ProgramModel],
        ev: Evaluation,
        tmp: Path,
    ) -> Package:
        root = tmp / "bundle"
        root.mkdir()
        meta: dict[str, Any] = {"preprocessor": prep.pre.to_dict(), "programs": {}}
        for p, m in fitted.items():
            info: dict[str, Any] = {"calibrator": m.calibrator.to_dict()}
            for part in ("response", "treated", "control"):
                b = getattr(m, part)
                info[part] = f"{p}_{part}.txt" if b is not None else None
                if b is not None:
                    b.save_model(str(root / info[part]))
            meta["programs"][p] = info
        (root / "meta.json").write_text(json.dumps(meta))
        example = prep.df.loc[prep.split.train, prep.feats].head(5)
        pyf = PropensityPyfunc()
        pyf.load_context(type("Ctx", (), {"artifacts": {"bundle": str(root)}})())

        def mean_response(X: pd.DataFrame) -> np.ndarray:
            out = pyf.predict(None, X)
            cols = [c for c in out.columns if c.endswith("_p_no_offer")]
            return out[cols].mean(axis=1).to_numpy()

        return Package(
            python_model=PropensityPyfunc(),
            artifacts={"bundle": str(root)},
            example=example,
            example_output=pyf.predict(None, example),
            test_set=prep.df.loc[prep.split.test].copy(),
            predict=mean_response,
            tags={"programs": ",".join(fitted)},
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        from training.registry import model_inputs

        programs = tags.get("programs", "").split(",")
        return evaluate_propensity(model.predict(model_inputs(model, test)), test, programs)

    def render(self, ev: Evaluation) -> list[str]:
        lines = [
            f"  {'program':<18} {'ROC-AUC':>8} {'oracle':>7} {'PR-AUC':>7} {'lift10':>6} {'Brier':>7}"
            f" {'Qini obs':>9} {'Qini true':>9} {'oracle':>8} {'of oracle':>9}",
        ]
        for p, m in ev.details["per_program"].items():
            lines.append(
                f"  {p:<18} {m['roc_auc']:8.4f} {m.get('oracle_roc_auc', float('nan')):7.4f} {m['pr_auc']:7.4f}"
                f" {m['lift_top_decile']:6.2f} {m['brier']:7.4f} {m.get('qini_observed', float('nan')):9.4f}"
                f" {m.get('qini_true', float('nan')):9.5f} {m.get('qini_oracle', float('nan')):8.5f}"
                f" {m.get('qini_share_of_oracle', float('nan')):9.2f}"
            )
        return lines


def train_propensity(cfg: ModelConfig, settings: Any, **kw: Any) -> Any:
    """The one pipeline (:func:`training.pipeline.train`) with the propensity config."""
    from training.pipeline import train

    return train(cfg, settings, **kw)
