"""The disaggregation spec of the one training pipeline.

prepared data (unseen-home or time split) → the mean baseline and combinatorial
optimisation (references) → Optuna trials over window, channels and learning rate calling
the same fit as the final network (:func:`fit_network`) → evaluation on the test homes/days
(MAE, SAE, NDE, F1 per appliance; monthly energy-breakdown accuracy on synthetic homes) →
the pyfunc (a window of readings in, a series per appliance out) → registered, and
promoted by the registry's gate on skill (1 - mean over appliances of MAE / the mean
baseline's MAE), re-scored on windows of the test homes logged with the candidate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.disaggregation.config import DisaggConfig
from training.disaggregation.estimators import (
    CombinatorialOptimisation,
    MeanDisaggregator,
    NeuralDisaggregator,
)
from training.disaggregation.metrics import all_metrics, skill
from training.disaggregation.prepare import Prepared as Windows
from training.spec import Evaluation, Package, Prepared

if TYPE_CHECKING:
    from training.kinds.base import Kind
    from training.tuning import FitFn

log = logging.getLogger(__name__)
VALID_WINDOWS = 16
TRUE, BASE = "true_", "base_"  # gate test-set columns: the truth and the mean baseline


def network_params(
    cfg: DisaggConfig, params: dict[str, Any], interval_minutes: float
) -> dict[str, Any]:
    """Estimator keyword arguments: config defaults overridden by a trial's parameters.

    ``window_hours`` (resolution-free) becomes ``window`` in readings (odd: a midpoint).
    """
    kw = {**cfg.estimator, **params, "appliances": list(cfg.appliances), "seed": cfg.seed}
    hours = kw.pop("window_hours", None)
    if hours is not None:
        kw["window"] = int(round(float(hours) * 60 / interval_minutes)) | 1
    return kw


def reference_models(cfg: DisaggConfig, P: Windows) -> dict[str, Any]:
    """The mean baseline and the classical method, fitted on the training split."""
    return {
        "mean": MeanDisaggregator(list(cfg.appliances)).fit(P.X["train"], P.Y["train"]),
        "co": CombinatorialOptimisation(list(cfg.appliances), **cfg.classical, seed=cfg.seed).fit(
            P.X["train"], P.Y["train"]
        ),
    }


def fit_network(
    cfg: DisaggConfig,
    P: Windows,
    params: dict[str, Any],
    baseline: Any,
    report: Any = None,
    max_seconds: float | None = None,
) -> NeuralDisaggregator:
    """The one fit function used by tuning trials and by the final model."""
    # validation after every epoch: at most VALID_WINDOWS windows keep it cheap on a CPU
    Xv, Yv = P.X["valid"][:VALID_WINDOWS], P.Y["valid"][:VALID_WINDOWS]
    base_mae = all_metrics(Yv, baseline.predict(Xv), P.appliances, cfg.on_thresholds_w)[
        "mae"
    ].to_dict()

    def valid_score(pred: np.ndarray) -> float:
        m = all_metrics(Yv, pred, P.appliances, cfg.on_thresholds_w)["mae"].to_dict()
        return skill(m, base_mae)

    kw = network_params(cfg, params, P.interval_minutes)
    if max_seconds is not None:
        kw["max_seconds"] = max_seconds
    est = NeuralDisaggregator(**kw)
    est.fit(
        P.X["train"],
        P.Y["train"],
        X_valid=Xv,
        valid_score=valid_score,
        report=report,
        times=P.times,
        times_valid=P.times,
    )
    if est.floor_candidates_w:  # on every validation home: the floors are about rare owners
        est.fit_floors(P.X["valid"], P.Y["valid"], P.times)
        log.info(
            "output floors (W): %s", dict(zip(P.appliances, est.floor_w_.tolist(), strict=True))
        )
    return est


def evaluate_models(
    cfg: DisaggConfig, P: Windows, models: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """Per-appliance test metrics of each model, with MAE relative to the mean baseline."""
    out = {}
    for name, est in models.items():
        pred = est.predict(P.X["test"], times=P.times)
        out[name] = all_metrics(P.Y["test"], pred, P.appliances, cfg.on_thresholds_w)
    base = out["mean"]["mae"]
    for m in out.values():
        m["mae_vs_mean"] = m["mae"] / base
    return out


def bundle_meta(cfg: DisaggConfig, P: Windows, est: Any = None) -> dict[str, Any]:
    """What a bundle's user needs besides the network: input column, units, time input."""
    if cfg.data == "redd":
        meta: dict[str, Any] = {
            "appliances": list(cfg.appliances),
            "input_column": "aggregate_W",
            "to_watts": 1.0,
            "unit": "W",
            "resample_seconds": cfg.resample_seconds,
            "model": cfg.model_name,
        }
    else:
        meta = {
            "appliances": list(cfg.appliances),
            "input_column": "kwh",
            "to_watts": 60_000.0 / P.interval_minutes,
            "unit": "kWh per interval",
            "interval_minutes": P.interval_minutes,
            "model": cfg.model_name,
        }
    meta["time_features"] = list(getattr(est, "time_features", None) or [])
    return meta


def gate_windows(
    cfg: DisaggConfig, P: Windows, baseline: Any, meta: dict[str, Any]
) -> pd.DataFrame:
    """The promotion gate's test set: per test home ``cfg.gate_windows`` windows of
    ``cfg.gate_window_days`` days, evenly spaced, in the pyfunc's input form (``window_id``,
    the input column, ``ts`` when the network reads the time) beside the truth (``true_<a>``)
    and the mean baseline (``base_<a>``), in the input's unit."""
    from training.disaggregation.pyfunc import TS, WINDOW_ID

    X, Y, T = P.X["test"], P.Y["test"], P.X["test"].shape[1]
    length = min(T, max(1, int(round(cfg.gate_window_days * 1440 / P.interval_minutes))))
    starts = np.unique(np.linspace(0, T - length, cfg.gate_windows).round().astype(int))
    to_w = float(meta["to_watts"])
    base = baseline.predict(X, times=P.times)
    frames = []
    for h, home in enumerate(P.ids["test"]):
        for s in starts:
            sl = slice(s, s + length)
            f = pd.DataFrame({WINDOW_ID: f"{home}:{s}", meta["input_column"]: X[h, sl] / to_w})
            if meta["time_features"] and P.times is not None:
                f[TS] = pd.to_datetime(P.times[sl], unit="s")
            for j, a in enumerate(P.appliances):
                f[TRUE + a] = Y[h, sl, j] / to_w
                f[BASE + a] = base[h, sl, j] / to_w
            frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    # a window where the meter read nothing is no test of a model
    return out[np.isfinite(out[meta["input_column"]])].reset_index(drop=True)


@dataclass(kw_only=True)
class DisaggPrepared(Prepared):
    windows: Windows
    refs: dict[str, Any]


class DisaggregationSpec:
    """Appliance loads from the aggregate meter: a network, with the references beside it."""

    def __init__(self) -> None:
        self._fitted: dict[str, NeuralDisaggregator] = {}  # this run's trial fits

    def load(self, dataset_dir: Path, cfg: DisaggConfig, kind: Kind) -> Windows:
        from training.disaggregation.prepare import prepare_redd, prepare_synthetic

        return (
            prepare_redd(dataset_dir, cfg)
            if cfg.data == "redd"
            else prepare_synthetic(dataset_dir, cfg)
        )

    def prepare(self, data: Windows, cfg: DisaggConfig, ds: Path) -> DisaggPrepared:
        import torch

        torch.set_num_threads(cfg.tuning.threads)
        return DisaggPrepared(
            dataset_dir=ds,
            fingerprint=data.fingerprint(),
            params={
                "data": cfg.data,
                "split": data.description,
                "appliances": ",".join(cfg.appliances),
                "interval_minutes": data.interval_minutes,
                # every window of the split (train, valid, test), as tabular kinds count rows
                "training_rows": int(sum(x.shape[0] for x in data.X.values())),
                "train_windows": int(data.X["train"].shape[0]),
                "train_readings": int(data.X["train"].size),
            },
            windows=data,
            refs=reference_models(cfg, data),
        )

    def objective(self, prep: DisaggPrepared, cfg: DisaggConfig) -> FitFn:
        def fit_trial(params: dict[str, Any], report: Any) -> float:
            est = fit_network(
                cfg,
                prep.windows,
                params,
                prep.refs["mean"],
                report,
                max_seconds=cfg.tuning.trial_seconds,
            )
            self._fitted[_key(params)] = est
            return float(est.best_score_)

        return fit_trial

    def fit(
        self, prep: DisaggPrepared, cfg: DisaggConfig, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The best trial's network (refitted only when that trial ran in an earlier session
        of the study), the references, and the other architectures with the same parameters."""
        tuned = {k: v for k, v in params.items() if k in cfg.search_space}
        best = self._fitted.get(_key(tuned)) or fit_network(
            cfg, prep.windows, tuned, prep.refs["mean"], max_seconds=cfg.tuning.trial_seconds
        )
        models: dict[str, Any] = {**prep.refs, "network": best}
        for arch in cfg.compare_archs:
            if arch != best.arch:
                models[arch] = fit_network(
                    cfg,
                    prep.windows,
                    {**tuned, "arch": arch},
                    prep.refs["mean"],
                    max_seconds=cfg.tuning.trial_seconds,
                )
        return models

    def evaluate(
        self, prep: DisaggPrepared, cfg: DisaggConfig, fitted: dict[str, Any]
    ) -> Evaluation:
        P = prep.windows
        per_model = evaluate_models(cfg, P, fitted)
        logged: dict[str, float] = {}
        for name, m in per_model.items():
            for a in m.index:
                for k in ("mae", "sae", "nde", "f1", "mae_vs_mean"):
                    logged[f"{name}_{a}_{k}"] = float(m.loc[a, k])
        test_skill = float(1 - per_model["network"]["mae_vs_mean"].mean())
        logged["skill"] = test_skill
        breakdown: dict[str, float] = {}
        if cfg.data == "synthetic" and P.series is not None:
            from training.disaggregation.breakdown import panel_breakdown_accuracy

            for name, est in fitted.items():
                breakdown[name] = panel_breakdown_accuracy(prep.dataset_dir, cfg, P, est)
                logged[f"{name}_breakdown_accuracy"] = breakdown[name]
        best = fitted["network"]
        floors = getattr(best, "floor_w_", None)
        return Evaluation(
            {"skill": test_skill},
            logged,
            {
                "per_model": per_model,
                "breakdown": breakdown,
                "arch": best.arch,
                "description": P.description,
                "floors_w": (
                    dict(zip(P.appliances, np.asarray(floors).tolist(), strict=True))
                    if floors is not None and best.floor_candidates_w
                    else {}
                ),
            },
        )

    def package(
        self,
        prep: DisaggPrepared,
        cfg: DisaggConfig,
        fitted: dict[str, Any],
        ev: Evaluation,
        tmp: Path,
    ) -> Package:
        from mlflow.models import infer_signature

        from training.disaggregation.pyfunc import START, TS, DisaggBundle, DisaggModel, save_bundle
        from training.tracking import PIP_REQUIREMENTS

        P, est = prep.windows, fitted["network"]
        meta = bundle_meta(cfg, P, est)
        (tmp / "eval").mkdir(exist_ok=True)
        files: dict[Path, str] = {}
        for name, m in ev.details["per_model"].items():
            path = tmp / "eval" / f"metrics_{name}.csv"
            m.to_csv(path)
            files[path] = "eval"
        (tmp / "eval" / "split.json").write_text(json.dumps(P.ids))
        files[tmp / "eval" / "split.json"] = "eval"
        bundle = save_bundle(tmp / "bundle", est, meta)
        n_ex = int(min(P.X["test"].shape[1], 96))
        x = np.nan_to_num(P.X["test"][0, :n_ex]) / meta["to_watts"]
        example = pd.DataFrame({meta["input_column"]: x.astype(np.float64)})
        params: dict[str, str] | None = None
        if meta.get("time_features"):  # the readings' times are an input too (naive UTC)
            assert P.times is not None
            example[TS] = pd.to_datetime(P.times[:n_ex], unit="s")
            params = {START: ""}  # or, without a ts column, the first reading's time
        out = DisaggBundle(bundle, device="cpu").predict_frame(example)
        return Package(
            python_model=DisaggModel(),
            artifacts={"bundle": str(bundle)},
            example=example,
            example_output=out,
            test_set=gate_windows(cfg, P, prep.refs["mean"], meta),
            files=files,
            tags={"test_skill": f"{ev.headline['skill']:.4f}"},
            signature=_optional_ts(infer_signature(example, out, params=params)),
            requirements=[*PIP_REQUIREMENTS, f"torch=={_torch_version()}"],
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        """Skill and MAE per appliance of a loaded pyfunc on the logged test windows."""
        from training.registry import model_inputs

        appliances = [c[len(TRUE) :] for c in test.columns if c.startswith(TRUE)]
        pred = model.predict(model_inputs(model, test))
        out: dict[str, float] = {}
        mae, base = {}, {}
        for a in appliances:
            t = test[TRUE + a].to_numpy(float)
            ok = np.isfinite(t)
            mae[a] = float(np.mean(np.abs(pred[a].to_numpy(float)[ok] - t[ok])))
            base[a] = float(np.mean(np.abs(test[BASE + a].to_numpy(float)[ok] - t[ok])))
            out[f"mae_{a}"] = mae[a]
        out["skill"] = skill(mae, base)
        out["rows"] = float(len(test))
        return out

    def render(self, ev: Evaluation) -> list[str]:
        d = ev.details
        per_model: dict[str, pd.DataFrame] = d["per_model"]
        lines = [f"  {d['description']}; network = {d['arch']}", "  test MAE (W) per appliance:"]
        apps = list(next(iter(per_model.values())).index)
        lines.append(f"    {'model':<12}" + "".join(f"{a:>13}" for a in apps))
        for name, m in per_model.items():
            lines.append(f"    {name:<12}" + "".join(f"{m.loc[a, 'mae']:>13.1f}" for a in apps))
        nn = per_model.get("network")
        if nn is not None:
            lines.append(
                "  network: "
                + "  ".join(
                    f"{a} SAE {nn.loc[a, 'sae']:.2f} NDE {nn.loc[a, 'nde']:.2f} F1 {nn.loc[a, 'f1']:.2f}"
                    for a in apps
                )
            )
        lines.append(f"  test skill {ev.headline['skill']:.3f} (1 - MAE / the mean baseline's)")
        for k, v in d["breakdown"].items():
            lines.append(f"  breakdown accuracy ({k}): {v:.3f}")
        return lines


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _optional_ts(signature: Any) -> Any:
    """The signature with the ``ts`` column optional (``start`` can stand in for it)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from training.disaggregation.pyfunc import TS

    cols = [
        ColSpec(c.type, c.name, required=False) if c.name == TS else c
        for c in signature.inputs.inputs
    ]
    return ModelSignature(Schema(cols), signature.outputs, signature.params)


def _torch_version() -> str:
    import torch

    return str(torch.__version__).split("+")[0]
