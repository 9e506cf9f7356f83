"""Optuna tuning around the training function (TPE, median pruning, persistent studies).

The objective samples parameters from the config's search space and calls the same fit
function the final model uses; each trial is a nested MLflow run. Studies live in
``mlruns/optuna.db`` keyed by model and training-set fingerprint: a study resumes, and every
run adds its ``trials`` NEW trials to it (TPE learning from the earlier ones), so a run on
data and a search that were tuned before still does the tuning it was asked for. The final
model uses the best trial of the whole study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from training.config import ModelConfig, SearchParam
    from wattwise.settings import Settings

log = logging.getLogger(__name__)

Report = Callable[[int, float], None]
# A trial's score, or its score and the scores of its parts (a multi-model spec such as
# propensity: one response model per program), from which each part gets its own best trial.
FitFn = Callable[[dict[str, Any], Report | None], "float | tuple[float, dict[str, float]]"]
PARTS_ATTR = "part_scores"
# the key under which a multi-model spec's fit receives each part's parameters
PARTS_KEY = "__parts__"


def sample(trial: optuna.Trial, space: dict[str, SearchParam]) -> dict[str, Any]:
    """Draw one parameter set from the search space."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "float":
            out[name] = trial.suggest_float(name, float(p.low), float(p.high), log=p.log)  # type: ignore[arg-type]
        elif p.type == "int":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)  # type: ignore[arg-type]
        else:
            out[name] = trial.suggest_categorical(name, p.choices)  # type: ignore[arg-type]
    return out


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_value: float
    trials_run: int
    trials_total: int
    pruned: int
    seconds: float
    study_name: str
    # per part (when the objective scores parts): the parameters of the trial that scored
    # that part best, so that one study tunes every part
    best_params_by_part: dict[str, dict[str, Any]] = field(default_factory=dict)


def best_by_part(
    trials: list[optuna.trial.FrozenTrial], maximize: bool
) -> dict[str, dict[str, Any]]:
    """For each part scored by some completed trial, the parameters of its best trial."""
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for t in trials:
        for part, v in (t.user_attrs.get(PARTS_ATTR) or {}).items():
            if v is None or v != v:  # NaN: the part had no validation score
                continue
            score = v if maximize else -v
            if part not in best or score > best[part][0]:
                best[part] = (score, dict(t.params))
    return {part: params for part, (_, params) in best.items()}


def tune(
    cfg: ModelConfig,
    settings: Settings,
    fit: FitFn,
    study_name: str,
    *,
    trials: int | None = None,
    timeout_s: float | None = None,
    log_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> TuneResult:
    """Run ``trials`` new trials (default: the config's) in the study, resumed when it
    exists, or fewer when time runs out; the result is the best of all its trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    storage = f"sqlite:///{settings.mlruns_dir / 'optuna.db'}"
    maximize = cfg.metric.direction == "maximize"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        direction="maximize" if maximize else "minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=30)
        if cfg.tuning.pruning
        else optuna.pruners.NopPruner(),
    )
    before = len(study.trials)
    todo = trials or cfg.tuning.trials  # new trials of this run, whatever the study holds
    # seeded by the config's seed and the study's size: the same history gives the same
    # draws, and a resumed study does not redraw the random start-up trials it already ran
    study.sampler = optuna.samplers.TPESampler(
        seed=cfg.tuning.seed + before, n_startup_trials=min(8, cfg.tuning.trials)
    )
    if not any(t.state.is_finished() for t in study.trials):  # the estimator's values first
        study.enqueue_trial({k: v for k, v in cfg.estimator.items() if k in cfg.search_space})

    def objective(trial: optuna.Trial) -> float:
        params = sample(trial, cfg.search_space)

        def report(step: int, value: float) -> None:
            trial.report(value, step)  # in the study's own direction
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at iteration {step}")

        out = fit(params, report if cfg.tuning.pruning else None)
        if isinstance(out, tuple):
            score, parts = out
            trial.set_user_attr(PARTS_ATTR, {k: float(v) for k, v in parts.items()})
            return float(score)
        return float(out)

    callbacks = [lambda s, t: log_trial(t)] if log_trial else []
    study.optimize(
        objective, n_trials=todo, timeout=timeout_s or cfg.tuning.timeout_s, callbacks=callbacks
    )
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        raise RuntimeError(f"study {study_name} has no completed trial")
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return TuneResult(
        best_params=dict(study.best_params),
        best_value=float(study.best_value),
        trials_run=len(study.trials) - before,
        trials_total=len(study.trials),
        pruned=pruned,
        seconds=time.perf_counter() - t0,
        study_name=study_name,
        best_params_by_part=best_by_part(finished, maximize),
    )
