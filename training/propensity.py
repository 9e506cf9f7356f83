"""Program propensity and offer uplift: one response model and one uplift estimate per program.

Why one model per program (not one multi-output model): each program has its own eligible
population (an EV rate only for EV owners, solar only for houses), its own base rate and
drivers; separate boosters keep those apart, while sharing the pipeline, the tuned
hyper-parameters and one registered pyfunc.

- **Response** (probability of enrolling within 90 days, given the features and whether an
  offer was sent): LightGBM with the offer flag as a feature, calibrated on validation. It
  gives ``p_no_offer`` and ``p_offer``, and ``uplift = p_offer - p_no_offer`` of that same
  calibrated model: the three numbers of a response always agree.
- **T-learner uplift** (reported beside it as ``t_learner_uplift``): two boosters fitted on
  offered and not-offered customers, their difference (uncalibrated). Offers are randomized,
  so the two groups are comparable; an arm with fewer than ``MIN_ARM_POSITIVES`` enrolments
  is not fitted (null).
- **Offer gate**: a program is offered by ranking only if its ``uplift`` passed the config's
  ``program_floor`` on the test rows (observed Qini above zero, a response ROC-AUC floor);
  the registered model records each program's verdict and reason, and the service says it.
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

from training.estimators import Calibrator, FramePreprocessor, LgbData, fit_lightgbm
from training.kinds.propensity import PropensityConfig
from training.metrics import auc_difference_se, binary_metrics, qini_coefficient, true_qini
from training.spec import Evaluation, Package, TabularPrepared
from training.tabular import TabularSpec
from training.tuning import PARTS_KEY
from wattwise.errors import DataError

try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from training.oracle import EnrollmentOracle
    from training.tuning import FitFn

log = logging.getLogger(__name__)
OFFER = "__offered__"
MIN_ARM_POSITIVES = 20  # enrollments an uplift arm needs in training
OUTPUTS = ("p_no_offer", "p_offer", "uplift", "t_learner_uplift")  # per program, as served


@dataclass
class ProgramModel:
    response: Any
    treated: Any
    control: Any
    calibrator: Calibrator


def _program_rows(df: pd.DataFrame, program: str) -> np.ndarray:
    return df[f"enrolled_{program}"].notna().to_numpy()


@dataclass
class ProgramData:
    """One program's rows and LightGBM datasets, binned once per study (trials share them)."""

    y: np.ndarray
    t: np.ndarray
    tr: np.ndarray  # train rows of this program (a label, in the split's train part)
    va: np.ndarray
    response: LgbData  # features plus the offer flag, train vs valid
    arms: dict[bool, LgbData | None]  # T-learner arms (offered, not offered); None: too few

    @classmethod
    def build(
        cls,
        X: pd.DataFrame,
        y: np.ndarray,
        t: np.ndarray,
        tr: np.ndarray,
        va: np.ndarray,
        weight: np.ndarray | None = None,
    ) -> ProgramData:
        Xr = X.assign(**{OFFER: t.astype(float)})
        arms: dict[bool, LgbData | None] = {}
        for arm in (True, False):
            a_tr, a_va = tr & (t == arm), va & (t == arm)
            # an arm with a handful of enrollments gives a noisy booster whose difference is
            # not an effect (uplift +0.33 where p_offer is 0.002): fall back to the response
            ok = y[a_tr].sum() >= MIN_ARM_POSITIVES and len(np.unique(y[a_va])) == 2
            w_arm = None if weight is None else weight[a_tr]
            arms[arm] = (
                LgbData.build(X[a_tr], y[a_tr], X[a_va], y[a_va], weight=w_arm) if ok else None
            )
        w = None if weight is None else weight[tr]
        return cls(y, t, tr, va, LgbData.build(Xr[tr], y[tr], Xr[va], y[va], weight=w), arms)


def fit_program(
    params: dict[str, Any],
    X: pd.DataFrame,
    data: ProgramData,
    n_jobs: int,
    calibration: str,
    uplift: bool = True,
    report: Any = None,
    **budget: Any,
) -> tuple[ProgramModel, float]:
    """Fit the response model of one program and, with ``uplift``, its two T-learner arms
    (the training function: tuning calls it with ``uplift=False`` and a round budget)."""
    d = data
    resp = fit_lightgbm(
        params, None, None, None, None, data=d.response, n_jobs=n_jobs, report=report, **budget
    )
    raw_va = resp.booster.predict(
        X[d.va].assign(**{OFFER: d.t[d.va].astype(float)}), num_iteration=resp.best_iteration
    )
    cal = Calibrator(calibration).fit(raw_va, d.y[d.va])
    learners: list[Any] = [None, None]
    if uplift:
        for k, arm in enumerate((True, False)):
            a = d.arms[arm]
            if a is not None:
                learners[k] = fit_lightgbm(
                    params, None, None, None, None, data=a, n_jobs=n_jobs, **budget
                ).booster
    return ProgramModel(resp.booster, learners[0], learners[1], cal), resp.valid_score


def predict_program(
    m: ProgramModel, X: pd.DataFrame, offered: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Calibrated response probability without and with an offer (and, given the offer
    status, for it), ``uplift`` = their difference, and the T-learner's estimate (NaN when
    its arms were not fitted)."""
    out: dict[str, np.ndarray] = {}
    for name, flag in (("p_no_offer", 0.0), ("p_offer", 1.0)):
        out[name] = np.asarray(
            m.calibrator.predict(m.response.predict(X.assign(**{OFFER: flag}))), float
        )
    if offered is not None:
        out["p"] = np.where(offered, out["p_offer"], out["p_no_offer"])
    out["uplift"] = out["p_offer"] - out["p_no_offer"]
    out["t_learner_uplift"] = (
        np.asarray(m.treated.predict(X) - m.control.predict(X), float)
        if m.treated is not None and m.control is not None
        else np.full(len(X), np.nan)
    )
    return out


class PropensityPyfunc(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: features in → per program ``<p>_p_no_offer``, ``_p_offer``, ``_uplift``,
    ``_t_learner_uplift`` and ``_offer`` (whether ranking may offer it) out."""

    def load_context(self, context: Any) -> None:
        import lightgbm as lgb

        root = Path(context.artifacts["bundle"])
        meta = json.loads((root / "meta.json").read_text())
        self.pre = FramePreprocessor.from_dict(meta["preprocessor"])
        self.programs: dict[str, ProgramModel] = {}
        # program -> (offered by ranking?, why not): the test gate of its uplift
        self.offers: dict[str, tuple[bool, str | None]] = {
            p: (bool(info.get("offer", True)), info.get("offer_reason"))
            for p, info in meta["programs"].items()
        }
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
            for k in OUTPUTS:
                out[f"{p}_{k}"] = r[k]
            out[f"{p}_offer"] = self.offers[p][0]
        return out


def evaluate_propensity(
    scores: pd.DataFrame, test: pd.DataFrame, programs: list[str]
) -> dict[str, float]:
    """On a logged test set: mean ROC-AUC over programs of the response probability for the
    offer actually received, each program's ROC-AUC and observed Qini of its ``uplift``, and
    how many programs the model offers by ranking (``programs_offered``)."""
    out: dict[str, float] = {}
    aucs = []
    for p in programs:
        rows = test[f"enrolled_{p}"].notna().to_numpy()
        if not rows.any() or f"{p}_p_offer" not in scores:
            continue
        offered = test.loc[rows, f"offered_{p}"].astype(bool).to_numpy()
        y = test.loc[rows, f"enrolled_{p}"].astype(float).to_numpy()
        prob = np.where(
            offered, scores.loc[rows, f"{p}_p_offer"], scores.loc[rows, f"{p}_p_no_offer"]
        )
        auc = binary_metrics(y, prob)["roc_auc"]
        aucs.append(auc)
        out[f"{p}_roc_auc"] = auc
        uplift = scores.loc[rows, f"{p}_uplift"].to_numpy(float)
        out[f"{p}_qini_observed"] = qini_coefficient(uplift, offered, y)
    out["roc_auc"] = float(np.nanmean(aucs)) if aucs else float("nan")
    out["programs_offered"] = float(
        sum(bool(scores[f"{p}_offer"].iloc[0]) for p in programs if f"{p}_offer" in scores)
        if len(scores)
        else 0
    )
    return out


def program_metrics(
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    uplift: np.ndarray,
    oracle: EnrollmentOracle | None,
    t_learner_uplift: np.ndarray | None = None,
) -> dict[str, float]:
    """Test metrics of one program, the model and the oracle on the same rows.

    ``roc_auc`` and ``oracle_roc_auc`` are both over every test row with a label (an
    ineligible row, such as a flat for solar, is a true 0 for both); ``*_on_eligible`` repeat
    them on the rows the generator held eligible at the snapshot (``truth_coverage`` of them),
    the harder ranking. Qini against the true effects is over eligible rows, the only ones an
    offer can reach.
    """
    from sklearn.metrics import roc_auc_score

    met = binary_metrics(y, p)
    met["positives"] = float(y.sum())
    met["qini_observed"] = qini_coefficient(uplift, t, y)
    tl = t_learner_uplift
    has_tl = tl is not None and bool(np.isfinite(tl).all())
    if has_tl:
        assert tl is not None
        met["qini_observed_t_learner"] = qini_coefficient(tl, t, y)
    if oracle is None:
        return met
    if len(oracle.p) != len(y):
        raise DataError(f"the oracle has {len(oracle.p)} rows, the test set {len(y)}")
    el = oracle.eligible
    met["truth_coverage"] = float(el.mean()) if len(el) else float("nan")
    if len(np.unique(y)) == 2:
        met["oracle_roc_auc"] = float(roc_auc_score(y, oracle.p))
        met["oracle_gap"] = met["oracle_roc_auc"] - met["roc_auc"]
        met["oracle_gap_se"] = auc_difference_se(y, oracle.p, p)
        met["oracle_brier"] = float(np.mean((oracle.p - y) ** 2))
    if el.any() and len(np.unique(y[el])) == 2:
        met["roc_auc_on_eligible"] = float(roc_auc_score(y[el], p[el]))
        met["oracle_roc_auc_on_eligible"] = float(roc_auc_score(y[el], oracle.p[el]))
    if el.any():
        tau = oracle.uplift[el]
        met["qini_true"] = true_qini(uplift[el], tau)
        met["qini_oracle"] = true_qini(tau, tau)
        met["qini_random"] = 0.0
        met["qini_share_of_oracle"] = (
            met["qini_true"] / met["qini_oracle"] if met["qini_oracle"] > 0 else float("nan")
        )
        if has_tl:
            assert tl is not None
            met["qini_true_t_learner"] = true_qini(tl[el], tau)
        stored = oracle.stored_uplift[el]
        if np.isfinite(stored).all():
            q_stored = true_qini(stored, stored)
            met["qini_share_of_stored_oracle"] = (
                true_qini(uplift[el], stored) / q_stored if q_stored > 0 else float("nan")
            )
    return met


class PropensitySpec(TabularSpec):
    """Propensity + uplift: one response model and a T-learner per program."""

    def __init__(self) -> None:
        self._cache: tuple[TabularPrepared, dict[str, ProgramData]] | None = None

    def _programs(self, df: pd.DataFrame, cfg: PropensityConfig) -> list[str]:
        programs = [p for p in cfg.programs if f"enrolled_{p}" in df]
        if not programs:
            raise DataError(
                "the training set has no enrolled_<program> labels for the configured programs"
            )
        return programs

    def label_columns(self, df: pd.DataFrame, cfg: PropensityConfig) -> list[str]:
        self._programs(df, cfg)
        return [c for c in df.columns if c.startswith(("enrolled_", "offered_"))]

    def split_target(self, df: pd.DataFrame, cfg: PropensityConfig) -> np.ndarray:
        """Enrolled in any program within the horizon (what a stratified split balances)."""
        cols = [f"enrolled_{p}" for p in self._programs(df, cfg)]
        return df[cols].astype("boolean").fillna(False).any(axis=1).astype(float).to_numpy()

    @staticmethod
    def _data(df: pd.DataFrame, p: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = _program_rows(df, p)
        y = df[f"enrolled_{p}"].astype("boolean").fillna(False).astype(float).to_numpy()
        t = df[f"offered_{p}"].astype(bool).to_numpy()
        return rows, y, t

    def _program_data(self, prep: TabularPrepared, cfg: PropensityConfig) -> dict[str, ProgramData]:
        if self._cache is None or self._cache[0] is not prep:
            sp = prep.split
            data = {}
            for p in self._programs(prep.df, cfg):
                rows, y, t = self._data(prep.df, p)
                data[p] = ProgramData.build(
                    prep.X, y, t, sp.train & rows, sp.valid & rows, prep.weight
                )
            self._cache = (prep, data)
        return self._cache[1]

    def _fit_all(
        self,
        prep: TabularPrepared,
        cfg: PropensityConfig,
        params: dict[str, Any],
        tuning: bool = False,
    ) -> tuple[dict[str, ProgramModel], dict[str, float]]:
        n_jobs = cfg.tuning.n_jobs_lightgbm
        budget: dict[str, Any] = (
            {"max_rounds": cfg.tuning.max_rounds, "early_stopping": cfg.tuning.early_stopping}
            if tuning
            else {}
        )
        by_program = params.get(PARTS_KEY, {})
        common = {k: v for k, v in params.items() if k != PARTS_KEY}
        models, scores = {}, {}
        for p, data in self._program_data(prep, cfg).items():
            m, score = fit_program(
                by_program.get(p, common),
                prep.X,
                data,
                n_jobs,
                cfg.calibration,
                uplift=not tuning,
                **budget,
            )
            models[p] = m
            scores[p] = score
        return models, scores

    def objective(self, prep: TabularPrepared, cfg: PropensityConfig) -> FitFn:
        def fit_trial(params: dict[str, Any], report: Any) -> tuple[float, dict[str, float]]:
            # trials rank parameters on the response models' validation AUC only: the
            # uplift arms are fitted once, with the chosen parameters. The study steers by the
            # mean; each program then takes the trial that served it best (programs differ:
            # 300 solar enrolments want stronger regularisation than 1,300 paperless ones)
            scores = self._fit_all(prep, cfg, {**cfg.estimator, **params}, tuning=True)[1]
            return float(np.nanmean(list(scores.values()))), scores

        return fit_trial

    def fit(
        self, prep: TabularPrepared, cfg: PropensityConfig, params: dict[str, Any]
    ) -> dict[str, ProgramModel]:
        return self._fit_all(prep, cfg, params)[0]

    def evaluate(
        self, prep: TabularPrepared, cfg: PropensityConfig, fitted: dict[str, ProgramModel]
    ) -> Evaluation:
        from training.oracle import enrollment_oracle

        per: dict[str, dict[str, float]] = {}
        df, ds = prep.df, prep.dataset_dir
        for p, m in fitted.items():
            rows, y, t = self._data(df, p)
            te = prep.split.test & rows
            pred = predict_program(m, prep.X[te], t[te])
            oracle = enrollment_oracle(
                ds, df.loc[te, ["customer_id", "event_timestamp", f"offered_{p}"]], p
            )
            per[p] = program_metrics(
                y[te], t[te], pred["p"], pred["uplift"], oracle, pred["t_learner_uplift"]
            )
        offers = {p: cfg.offer_verdict(met) for p, met in per.items()}
        for p, (ok, _) in offers.items():
            per[p]["offer"] = float(ok)
        mean_auc = float(np.nanmean([m["roc_auc"] for m in per.values()]))
        logged = {f"{p}_{k}": v for p, met in per.items() for k, v in met.items()}
        logged["roc_auc"] = mean_auc
        logged["programs_offered"] = float(sum(ok for ok, _ in offers.values()))
        gaps = [m["oracle_gap"] for m in per.values() if "oracle_gap" in m]
        if gaps:
            logged["oracle_gap_max"] = float(np.max(gaps))
            logged["oracle_gap_mean"] = float(np.mean(gaps))
        headline = {"roc_auc": mean_auc, "programs_offered": logged["programs_offered"]}
        return Evaluation(headline, logged, {"per_program": per, "offers": offers})

    def package(
        self,
        prep: TabularPrepared,
        cfg: PropensityConfig,
        fitted: dict[str, ProgramModel],
        ev: Evaluation,
        tmp: Path,
    ) -> Package:
        root = tmp / "bundle"
        root.mkdir()
        meta: dict[str, Any] = {"preprocessor": prep.pre.to_dict(), "programs": {}}
        offers: dict[str, tuple[bool, str | None]] = ev.details["offers"]
        for p, m in fitted.items():
            ok, why = offers[p]
            info: dict[str, Any] = {
                "calibrator": m.calibrator.to_dict(),
                "offer": ok,
                "offer_reason": None if ok else f"not offered by ranking: {why}",
            }
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
            reference=prep.df.loc[prep.split.test, prep.feats],
            tags={
                "programs": ",".join(fitted),
                "offered": ",".join(p for p, (ok, _) in offers.items() if ok),
            },
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        from training.registry import model_inputs

        programs = tags.get("programs", "").split(",")
        return evaluate_propensity(model.predict(model_inputs(model, test)), test, programs)

    def render(self, ev: Evaluation) -> list[str]:
        nan = float("nan")
        lines = [
            "  ROC-AUC and oracle on the same test rows (oracle: the true probability of the"
            " label, 0 where ineligible); elig = share eligible at the snapshot",
            f"  {'program':<18} {'rows':>7} {'pos':>5} {'ROC-AUC':>8} {'oracle':>7} {'gap':>7} {'± se':>6}"
            f" {'elig':>5} {'on elig':>7} {'oracle':>7} {'PR-AUC':>7} {'lift10':>6} {'Brier':>7}"
            f" {'Qini obs':>9} {'Qini true':>9} {'of oracle':>9} {'T-l true':>9}  offer",
        ]
        for p, m in ev.details["per_program"].items():
            g = m.get
            lines.append(
                f"  {p:<18} {int(m['rows']):7d} {int(g('positives', 0)):5d} {m['roc_auc']:8.4f}"
                f" {g('oracle_roc_auc', nan):7.4f} {g('oracle_gap', nan):+7.4f} {g('oracle_gap_se', nan):6.4f}"
                f" {g('truth_coverage', nan):5.2f} {g('roc_auc_on_eligible', nan):7.4f}"
                f" {g('oracle_roc_auc_on_eligible', nan):7.4f} {m['pr_auc']:7.4f}"
                f" {m['lift_top_decile']:6.2f} {m['brier']:7.4f} {g('qini_observed', nan):9.4f}"
                f" {g('qini_true', nan):9.5f} {g('qini_share_of_oracle', nan):9.2f}"
                f" {g('qini_true_t_learner', nan):9.5f}  {'yes' if m.get('offer') else 'no'}"
            )
        for p, (ok, why) in ev.details.get("offers", {}).items():
            if not ok:
                lines.append(f"  {p}: not offered by ranking: {why}")
        return lines
