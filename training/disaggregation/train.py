"""Train, evaluate, track and register a disaggregation model.

prepared data (unseen-home or time split) → mean baseline and combinatorial optimisation
(references) → Optuna study over window, channels and learning rate
(:func:`training.tuning.tune`, the platform's persistent TPE study with pruning) calling the
same fit as the final network → evaluation on the test homes/days (MAE, SAE, NDE, F1 per
appliance; monthly energy-breakdown accuracy on synthetic homes) → MLflow (parent run,
nested trial runs, metrics per model and appliance, the pyfunc with signature, input example
and explicit requirements) → registered version: @champion when it is the first, else
@challenger, and @champion moves when the candidate beats the champion on the candidate's
test data.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from training.disaggregation.config import DisaggConfig
from training.disaggregation.estimators import (
    CombinatorialOptimisation,
    MeanDisaggregator,
    NeuralDisaggregator,
)
from training.disaggregation.metrics import all_metrics, skill
from training.disaggregation.prepare import Prepared

if TYPE_CHECKING:
    from training.config import ModelConfig
    from training.tuning import TuneResult
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
EXPERIMENT = "disaggregation"
VALID_WINDOWS = 16


@dataclass
class DisaggResult:
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, pd.DataFrame]  # model → per-appliance metrics on the test split
    tune: TuneResult
    seconds: float
    description: str
    aliases: list[str] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)
    best_params: dict[str, Any] = field(default_factory=dict)
    arch: str = ""

    def render(self) -> str:
        lines = [
            f"{self.model_name} v{self.version} (run {self.run_id[:8]}) in {self.seconds:.1f} s; "
            f"{self.description}",
            f"  study {self.tune.study_name}: {self.tune.trials_run} new trials "
            f"({self.tune.trials_total} total, {self.tune.pruned} pruned), best valid skill "
            f"{self.tune.best_value:.3f}; best {self.best_params}; network = {self.arch}",
            "  test MAE (W) per appliance:",
        ]
        apps = list(next(iter(self.metrics.values())).index)
        head = f"    {'model':<12}" + "".join(f"{a:>13}" for a in apps)
        lines.append(head)
        for name, m in self.metrics.items():
            lines.append(f"    {name:<12}" + "".join(f"{m.loc[a, 'mae']:>13.1f}" for a in apps))
        nn = self.metrics.get("network")
        if nn is not None:
            lines.append(
                "  network: "
                + "  ".join(
                    f"{a} SAE {nn.loc[a, 'sae']:.2f} NDE {nn.loc[a, 'nde']:.2f} F1 {nn.loc[a, 'f1']:.2f}"
                    for a in apps
                )
            )
        for k, v in self.breakdown.items():
            lines.append(f"  breakdown accuracy ({k}): {v:.3f}")
        if self.aliases:
            lines.append(f"  aliases: {', '.join('@' + a for a in self.aliases)}")
        return "\n".join(lines)


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


def config_key(cfg: DisaggConfig) -> str:
    """A short hash of what a trial's fit depends on besides the data."""
    import hashlib

    spec = {
        "estimator": cfg.estimator,
        "search_space": {k: v.model_dump() for k, v in cfg.search_space.items()},
        "appliances": cfg.appliances,
        "seed": cfg.seed,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


def reference_models(cfg: DisaggConfig, P: Prepared) -> dict[str, Any]:
    """The mean baseline and the classical method, fitted on the training split."""
    return {
        "mean": MeanDisaggregator(list(cfg.appliances)).fit(P.X["train"], P.Y["train"]),
        "co": CombinatorialOptimisation(list(cfg.appliances), **cfg.classical, seed=cfg.seed).fit(
            P.X["train"], P.Y["train"]
        ),
    }


def fit_network(
    cfg: DisaggConfig,
    P: Prepared,
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


def evaluate(cfg: DisaggConfig, P: Prepared, models: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Per-appliance test metrics of each model, with MAE relative to the mean baseline."""
    out = {}
    for name, est in models.items():
        pred = est.predict(P.X["test"], times=P.times)
        m = all_metrics(P.Y["test"], pred, P.appliances, cfg.on_thresholds_w)
        out[name] = m
    base = out["mean"]["mae"]
    for m in out.values():
        m["mae_vs_mean"] = m["mae"] / base
    return out


def train_disaggregation(
    cfg: DisaggConfig,
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    prepared: Prepared | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    trial_seconds: float | None = None,
) -> DisaggResult:
    """The whole pipeline for one config (synthetic or REDD); returns what it registered."""
    import mlflow

    from training import tracking
    from training.disaggregation.prepare import prepare_redd, prepare_synthetic
    from training.tuning import tune

    t0 = time.perf_counter()
    ds = dataset_dir or settings.data_dir / cfg.dataset
    if prepared is not None:
        P = prepared
    elif cfg.data == "redd":
        P = prepare_redd(ds, cfg)
    else:
        P = prepare_synthetic(ds, cfg)
    client = tracking.setup(settings)
    tracking.experiment(settings, EXPERIMENT if cfg.data == "synthetic" else cfg.name)
    fp = P.fingerprint()
    # the study is keyed by the data and by what its trials fit (a changed network config,
    # time features say, starts a new study rather than reusing incomparable trials)
    study_name = f"{cfg.name}-{ds.name}-{fp}-{config_key(cfg)}"
    refs = reference_models(cfg, P)

    with mlflow.start_run(run_name=f"{cfg.name}-{fp[:8]}") as parent:
        mlflow.log_params(
            {
                "dataset": str(ds.name),
                "data": cfg.data,
                "training_set_fingerprint": fp,
                "split": P.description,
                "appliances": ",".join(cfg.appliances),
                "interval_minutes": P.interval_minutes,
                "train_windows": int(P.X["train"].shape[0]),
                "train_readings": int(P.X["train"].size),
            }
        )
        mlflow.set_tags({"wattwise.spec": "disaggregation", "wattwise.model": cfg.model_name})

        fitted: dict[str, NeuralDisaggregator] = {}  # this run's trials, by parameters

        def fit_trial(params: dict[str, Any], report: Any) -> float:
            est = fit_network(cfg, P, params, refs["mean"], report, max_seconds=trial_seconds)
            fitted[json.dumps(params, sort_keys=True, default=str)] = est
            return float(est.best_score_)

        def log_trial(t: Any) -> None:
            with mlflow.start_run(run_name=f"trial-{t.number}", nested=True):
                mlflow.log_params(t.params)
                mlflow.set_tag("state", t.state.name)
                if t.value is not None:
                    mlflow.log_metric("valid_skill", t.value)

        # tune() reads only tuning.*, metric.direction, estimator and search_space, which
        # DisaggConfig declares with the same names and types as ModelConfig
        tres = tune(
            cast("ModelConfig", cfg),
            settings,
            fit_trial,
            study_name,
            trials=trials,
            timeout_s=timeout_s,
            log_trial=log_trial,
        )
        # the final model is the best trial's fit (same function, same data, same seed);
        # refit only when the best trial ran in an earlier session of the study
        key = json.dumps(tres.best_params, sort_keys=True, default=str)
        best = fitted.get(key) or fit_network(
            cfg, P, tres.best_params, refs["mean"], max_seconds=trial_seconds
        )
        models: dict[str, Any] = {**refs, "network": best}
        for arch in cfg.compare_archs:
            if arch != best.arch:
                models[arch] = fit_network(
                    cfg,
                    P,
                    {**tres.best_params, "arch": arch},
                    refs["mean"],
                    max_seconds=trial_seconds,
                )
        metrics = evaluate(cfg, P, models)
        for name, m in metrics.items():
            for a in m.index:
                mlflow.log_metrics(
                    {
                        f"test_{name}_{a}_{k}": float(m.loc[a, k])
                        for k in ("mae", "sae", "nde", "f1", "mae_vs_mean")
                        if np.isfinite(m.loc[a, k])
                    }
                )
        test_skill = float(1 - metrics["network"]["mae_vs_mean"].mean())
        mlflow.log_metric("test_skill", test_skill)
        mlflow.log_params({f"best_{k}": v for k, v in tres.best_params.items()})
        floors = getattr(best, "floor_w_", None)
        if floors is not None and best.floor_candidates_w:
            mlflow.log_params(
                {f"floor_w_{a}": float(v) for a, v in zip(P.appliances, floors, strict=True)}
            )
        breakdown: dict[str, float] = {}
        if cfg.data == "synthetic" and P.series is not None:
            from training.disaggregation.breakdown import panel_breakdown_accuracy

            for name, est in models.items():
                breakdown[name] = panel_breakdown_accuracy(ds, cfg, P, est)
                mlflow.log_metric(f"test_{name}_breakdown_accuracy", breakdown[name])
        version = _log_and_register(cfg, P, best, metrics, test_skill)
        aliases = _set_aliases(cfg, settings, client, P, version, test_skill)
        run_id = parent.info.run_id
    return DisaggResult(
        cfg.model_name,
        version,
        run_id,
        metrics,
        tres,
        time.perf_counter() - t0,
        P.description,
        aliases,
        breakdown,
        tres.best_params,
        best.arch,
    )


def bundle_meta(cfg: DisaggConfig, P: Prepared, est: Any = None) -> dict[str, Any]:
    """What a bundle's user needs besides the network: input column, units, time input."""
    meta = _bundle_meta(cfg, P)
    meta["time_features"] = list(getattr(est, "time_features", None) or [])
    return meta


def _bundle_meta(cfg: DisaggConfig, P: Prepared) -> dict[str, Any]:
    if cfg.data == "redd":
        return {
            "appliances": list(cfg.appliances),
            "input_column": "aggregate_W",
            "to_watts": 1.0,
            "unit": "W",
            "resample_seconds": cfg.resample_seconds,
            "model": cfg.model_name,
        }
    return {
        "appliances": list(cfg.appliances),
        "input_column": "kwh",
        "to_watts": 60_000.0 / P.interval_minutes,
        "unit": "kWh per interval",
        "interval_minutes": P.interval_minutes,
        "model": cfg.model_name,
    }


def _log_and_register(
    cfg: DisaggConfig,
    P: Prepared,
    est: NeuralDisaggregator,
    metrics: dict[str, pd.DataFrame],
    test_skill: float,
) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from training.disaggregation.pyfunc import (
        START,
        TS,
        DisaggBundle,
        DisaggModel,
        save_bundle,
    )
    from training.tracking import PIP_REQUIREMENTS

    meta = bundle_meta(cfg, P, est)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "eval").mkdir()
        for name, m in metrics.items():
            m.to_csv(d / "eval" / f"metrics_{name}.csv")
        (d / "eval" / "split.json").write_text(json.dumps(P.ids))
        mlflow.log_artifacts(str(d / "eval"), "eval")
        bundle = save_bundle(d / "bundle", est, meta)
        n_ex = int(min(P.X["test"].shape[1], 96))
        x = np.nan_to_num(P.X["test"][0, :n_ex]) / meta["to_watts"]
        example = pd.DataFrame({meta["input_column"]: x.astype(np.float64)})
        params: dict[str, str] | None = None
        if meta.get("time_features"):  # the readings' times are an input too (naive UTC)
            assert P.times is not None
            example[TS] = pd.to_datetime(P.times[:n_ex], unit="s")
            params = {START: ""}  # or, without a ts column, the first reading's time
        out = DisaggBundle(bundle, device="cpu").predict_frame(example)
        signature = _optional_ts(infer_signature(example, out, params=params))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=DisaggModel(),
            artifacts={"bundle": str(bundle)},
            signature=signature,
            input_example=example,
            pip_requirements=[*PIP_REQUIREMENTS, f"torch=={_torch_version()}"],
        )
    mv = mlflow.register_model(
        info.model_uri, cfg.model_name, tags={"wattwise.spec": "disaggregation"}
    )
    from mlflow import MlflowClient

    MlflowClient().set_model_version_tag(
        cfg.model_name, mv.version, "test_skill", f"{test_skill:.4f}"
    )
    return str(mv.version)


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


def _set_aliases(
    cfg: DisaggConfig, settings: Settings, client: Any, P: Prepared, version: str, test_skill: float
) -> list[str]:
    """@champion for the first version; otherwise @challenger, and @champion moves when the
    candidate's test skill beats the champion's on the candidate's own test data."""
    import mlflow

    from training.disaggregation.pyfunc import DisaggBundle
    from training.registry import CHALLENGER, CHAMPION, alias_version, move_alias

    champ = alias_version(client, cfg.model_name, CHAMPION)
    metrics = {"test_skill": test_skill}
    if champ is None:
        move_alias(settings, client, cfg.model_name, CHAMPION, version, metrics, "first champion")
        return [CHAMPION]
    move_alias(settings, client, cfg.model_name, CHALLENGER, version, metrics, "newly trained")
    try:
        path = mlflow.artifacts.download_artifacts(
            f"models:/{cfg.model_name}/{champ}/artifacts/bundle"
        )
        old = DisaggBundle(Path(path))
        if old.appliances != list(cfg.appliances):
            return [CHALLENGER]
        pred = old.predict_array(P.X["test"] / old.to_watts, times=P.times) * old.to_watts
        base = MeanDisaggregator().fit(P.X["train"], P.Y["train"]).predict(P.X["test"])
        mb = all_metrics(P.Y["test"], base, P.appliances, cfg.on_thresholds_w)["mae"].to_dict()
        mc = all_metrics(P.Y["test"], pred, P.appliances, cfg.on_thresholds_w)["mae"].to_dict()
        champ_skill = skill(mc, mb)
    except Exception as exc:  # an unreadable old champion must not block a new model
        log.warning("could not score @champion v%s on the new test data: %s", champ, exc)
        return [CHALLENGER]
    if test_skill > champ_skill:
        move_alias(
            settings,
            client,
            cfg.model_name,
            CHAMPION,
            version,
            {"candidate": test_skill, "champion": champ_skill},
            f"test skill {test_skill:.4f} > champion's {champ_skill:.4f} on the same test data",
        )
        return [CHAMPION, CHALLENGER]
    return [CHALLENGER]
