"""The one training pipeline: every model is a config plus its kind's spec (training.spec).

training data (the spec reads it: a point-in-time training set, settled events, the
sub-metered panel) → split → Optuna study whose trials call the spec's fit function → final
fit with the best parameters → evaluation (and the oracle on synthetic data) → MLflow
(parent run with nested trial runs, parameters, metrics, plots, fingerprint, the model as a
pyfunc with signature, input example and explicit requirements, the monitoring reference) →
registered version (@challenger) → gated promotion to @champion (training.registry).
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
from training.spec import Evaluation, ModelSpec, Prepared
from wattwise.errors import EmptyResultError

if TYPE_CHECKING:
    from training.kinds.base import Kind
    from training.registry import Promotion
    from training.tuning import TuneResult
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
TAG_KIND, TAG_MODEL, TAG_CONFIG = "wattwise.kind", "wattwise.model", "wattwise.config"
# on each training run: the config's metric and its direction (what "best" means for it) and
# the kind's headline test metrics, comma-separated (what `wattwise train list` shows)
TAG_METRIC, TAG_DIRECTION, TAG_HEADLINE = (
    "wattwise.metric",
    "wattwise.direction",
    "wattwise.headline",
)
ROWS_PARAM = "training_rows"  # every spec's prepare logs it: rows of its training data


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
    kind: str = ""

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


def study_name(cfg: ModelConfig, dataset_dir: Path, prep: Prepared) -> str:
    """A study resumes only for the same data and the same search (another space, estimator
    or metric is another study: its trials would not be comparable)."""
    search = json.dumps(cfg.study_key(), sort_keys=True, default=str)
    return (
        f"{cfg.name}-{dataset_dir.name}-{prep.fingerprint}-"
        f"{hashlib.sha1(search.encode()).hexdigest()[:8]}"
    )


def train(
    cfg: ModelConfig,
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    promote: bool = True,
    data: Any = None,
    kind: Kind | None = None,
    config_ref: str | None = None,
) -> TrainResult:
    """Train, evaluate, log, register and (gated) promote the model a config describes.

    ``data``: the spec's training data when the caller has it already (else the spec reads
    it from the dataset); ``kind``: default the registry's ``cfg.kind``; ``config_ref``: how
    the registry finds this config again (its name under configs/models, or its path), tagged
    on the version so that ``wattwise registry promote`` uses the same gate.
    """
    import mlflow

    from training import registry, tracking
    from training.kinds import get_kind
    from training.tuning import PARTS_KEY, tune

    t0 = time.perf_counter()
    kind = kind or get_kind(cfg.kind, settings)
    warm = tracking.prewarm()
    spec = kind.spec()
    ds = dataset_dir or settings.data_dir / cfg.dataset
    client = tracking.setup(settings)
    tracking.experiment(settings, cfg.name)
    prep = spec.prepare(data if data is not None else spec.load(ds, cfg, kind), cfg, ds)
    if prep.params.get(ROWS_PARAM) == 0:  # before any trial: there is nothing to tune on
        raise EmptyResultError(f"{cfg.name}: the training set of dataset {ds.name} has 0 rows")
    study = study_name(cfg, ds, prep)

    with mlflow.start_run(run_name=f"{cfg.name}-{prep.fingerprint[:8]}") as parent:
        mlflow.log_params(
            {
                "dataset": ds.name,
                "feature_service": cfg.feature_service or kind.service_name,
                "training_set_fingerprint": prep.fingerprint,
                **prep.params,
            }
        )
        tags = {TAG_KIND: kind.name, TAG_MODEL: cfg.model_name, "study": study}
        if config_ref:
            tags[TAG_CONFIG] = config_ref
        mlflow.set_tags({**tags, TAG_METRIC: cfg.metric.name, TAG_DIRECTION: cfg.metric.direction})

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
            study,
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
        mlflow.set_tag(TAG_HEADLINE, ",".join(ev.headline))
        warm.join()  # normally long done: tuning takes longer than the warm-up
        version = _log_and_register(cfg, kind, spec, prep, fitted, ev, tags)
        run_id = parent.info.run_id
    registry.move_alias(
        settings, client, cfg.model_name, registry.CHALLENGER, version, ev.headline, "newly trained"
    )
    promotion = (
        registry.promote(settings, cfg.model_name, cfg.promotion, candidate=version, spec=spec)
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
        kind.name,
    )


def _log_and_register(
    cfg: ModelConfig,
    kind: Kind,
    spec: ModelSpec,
    prep: Prepared,
    fitted: Any,
    ev: Evaluation,
    tags: dict[str, str],
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
        example = ints_as_doubles(pkg.example)
        signature = pkg.signature or infer_signature(example, pkg.example_output, params=pkg.params)
        t_log = time.perf_counter()
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pkg.python_model,
            artifacts=pkg.artifacts,
            signature=signature,
            input_example=example,
            pip_requirements=pkg.requirements or PIP_REQUIREMENTS,
        )
        mlflow.log_metric("log_model_seconds", time.perf_counter() - t_log)
        if pkg.reference is not None and pkg.predict is not None:
            sample = pkg.reference
            log_reference(build_reference(sample, pkg.predict(sample), 5000, cfg.tuning.seed))
    mv = mlflow.register_model(info.model_uri, cfg.model_name, tags={**tags, **pkg.tags})
    return str(mv.version)


@dataclass(frozen=True)
class RunSummary:
    """One training run as ``wattwise train list`` shows it."""

    run_id: str
    name: str
    metrics: dict[str, float]  # its headline test metrics, the config's metric first
    rows: str | None  # the training_rows it logged (None: an older run that did not)

    def line(self) -> str:
        shown = "  ".join(f"{k} {_number(v)}" for k, v in self.metrics.items()) or "no metrics"
        return (
            f"  run {self.run_id[:8]}  {self.name:<24} test {shown}  "
            f"training rows {self.rows if self.rows is not None else '?'}"
        )


@dataclass(frozen=True)
class ExperimentSummary:
    """An experiment's training runs, its best ones by the config's metric."""

    name: str
    runs: int
    metric: str | None  # the config's metric of its newest run (None: no run says)
    direction: str
    best: list[RunSummary]

    def lines(self) -> list[str]:
        by = f", best by test {self.metric} ({self.direction})" if self.metric else ""
        return [f"{self.name}: {self.runs} training runs{by}", *(r.line() for r in self.best)]


def _number(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 1 else f"{v:.4f}"


def run_metric(tags: dict[str, str], settings: Settings) -> tuple[str | None, str, list[str]]:
    """The config metric, its direction and the headline metric names of a training run: from
    its tags; for a run logged before the pipeline tagged them, from the config it was
    trained with (its ``wattwise.config`` tag, else the config registering its model)."""
    if TAG_METRIC in tags:
        head = [h for h in tags.get(TAG_HEADLINE, "").split(",") if h]
        return tags[TAG_METRIC], tags.get(TAG_DIRECTION, "maximize"), head
    from training.config import load_model_config, registered_config
    from wattwise.errors import WattwiseError

    try:
        ref = tags.get(TAG_CONFIG) or registered_config(tags.get(TAG_MODEL, ""))
        cfg = load_model_config(ref, settings=settings)
    except WattwiseError:  # a config since renamed or removed: nothing says
        return None, "maximize", []
    return cfg.metric.name, cfg.metric.direction, []


def summarize_runs(settings: Settings, best: int = 3, newest: int = 50) -> list[ExperimentSummary]:
    """Every wattwise experiment with its ``best`` training runs among its ``newest`` finished
    ones, ranked by the config's metric in its direction; each run with its own headline
    metrics and training rows."""
    from training.tracking import setup

    client = setup(settings)
    out = []
    for exp in client.search_experiments():
        if not exp.name.startswith(settings.mlflow.experiment_prefix + "/"):
            continue
        runs = client.search_runs(
            [exp.experiment_id],
            f"attributes.status = 'FINISHED' and tags.`{TAG_MODEL}` != ''",
            order_by=["attributes.start_time DESC"],
            max_results=newest,
        )
        described = [(r, *run_metric(r.data.tags, settings)) for r in runs]
        metric, direction = next(((m, d) for _, m, d, _ in described if m), (None, "maximize"))
        sign = -1.0 if direction == "maximize" else 1.0

        def rank(r: Any, metric: str | None = metric, sign: float = sign) -> tuple[bool, float]:
            v = r.data.metrics.get(f"test_{metric}", float("nan"))
            return (not np.isfinite(v), sign * v if np.isfinite(v) else 0.0)  # unmeasured last

        top = sorted(described, key=lambda x: rank(x[0]))[:best]
        out.append(
            ExperimentSummary(
                exp.name,
                len(runs),
                metric,
                direction,
                [
                    RunSummary(
                        r.info.run_id,
                        r.info.run_name,
                        _shown(r.data.metrics, m, head),
                        r.data.params.get(ROWS_PARAM),
                    )
                    for r, m, _, head in top
                ],
            )
        )
    return out


def _shown(logged: dict[str, float], metric: str | None, headline: list[str]) -> dict[str, float]:
    """The run's config metric, then its other headline metrics, as it logged them."""
    names = dict.fromkeys([*([metric] if metric else []), *headline])
    return {k: logged[f"test_{k}"] for k in names if f"test_{k}" in logged}


def ints_as_doubles(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as float64: a feature that is an integer in training can be missing
    when scored (a customer without that group's row), and MLflow's schema check refuses a
    missing value in an integer column (its own advice: declare such columns as doubles)."""
    ints = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c].dtype)]
    return frame.astype({c: "float64" for c in ints}) if ints else frame
