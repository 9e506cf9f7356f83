"""Model configs (``configs/models/NAME.yaml``): what differs between models is data.

Every config names its model **kind** (``kind: churn``); the kind (``training.kinds``) says
which config class validates the file. :class:`ModelConfig` holds what every kind has: the
dataset, the FeatureService, the estimator and its search space, tuning, the metric the study
optimises and the promotion gate. A kind's config class adds its own fields (a split, a
calibration, appliances, ...). Everything else is one pipeline (``training.pipeline``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wattwise.config import deep_merge, read_yaml, validate
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir

if TYPE_CHECKING:
    from wattwise.settings import Settings


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchParam(_Cfg):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical parameters need choices")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError("numeric parameters need low < high")
        return self


class TuningConfig(_Cfg):
    trials: int = Field(20, ge=1, le=10_000)
    timeout_s: float | None = Field(300, gt=0)
    pruning: bool = True
    seed: int = 42
    n_jobs_lightgbm: int = Field(2, ge=1, le=64)
    # Budget per trial: rounds are capped and early stopping is shorter while tuning; the
    # final fit uses the estimator's n_estimators and patience 50.
    max_rounds: int | None = Field(None, ge=10)
    early_stopping: int = Field(50, ge=5)


class MetricConfig(_Cfg):
    """The validation metric the study optimises (the kind's config restricts the names)."""

    name: str = "roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"


# guard and floor metrics where a larger value is worse (errors, losses); every other metric
# (ROC-AUC, PR-AUC, lift, Spearman, R², Qini, skill) is better when larger
LOWER_IS_BETTER = frozenset({"brier", "ece", "mae", "rmse", "mse", "mape", "log_loss"})
_FLOOR = re.compile(r"^\s*(>=|>|<=|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def parse_floor(metric: str, rule: str | float) -> tuple[str, float]:
    """``">= 0.55"`` → ``(">=", 0.55)``; a bare number means "at least" (at most for an
    error metric such as RMSE)."""
    if isinstance(rule, bool):
        raise ValueError(f"floor {metric}: {rule!r} is not a number or a rule like '>= 0.55'")
    if isinstance(rule, int | float):
        return ("<=" if metric in LOWER_IS_BETTER else ">="), float(rule)
    m = _FLOOR.match(str(rule))
    if m is None:
        raise ValueError(f"floor {metric}: {rule!r} is not a rule like '>= 0.55' or '> 0'")
    return m.group(1), float(m.group(2))


def floor_rules(v: dict[str, str | float]) -> dict[str, str | float]:
    """Validate a mapping of metric -> floor rule (a pydantic field validator's body)."""
    for metric, rule in v.items():
        parse_floor(metric, rule)
    return v


def floor_passes(value: float, op: str, bound: float) -> bool:
    if value != value:  # NaN: nothing measured, nothing passed
        return False
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


class GateConfig(_Cfg):
    """Promotion to @champion.

    ``floor``: absolute rules every candidate must pass, also the first version of a model
    (``{roc_auc: ">= 0.55"}``; a metric the candidate lacks fails). Against a champion, the
    candidate must then improve ``metric`` by more than nothing and by at least
    ``min_delta`` (a tie keeps the champion), and no guard metric may regress by more than
    its allowance.
    """

    metric: str = "roc_auc"
    higher_is_better: bool = True
    min_delta: float = Field(0.0, ge=0)
    guards: dict[str, float] = {}
    floor: dict[str, str | float] = {}

    @field_validator("floor")
    @classmethod
    def _rules(cls, v: dict[str, str | float]) -> dict[str, str | float]:
        return floor_rules(v)

    def floor_failures(self, metrics: dict[str, float]) -> list[str]:
        """Each floor rule the metrics fail, said in words (empty: all pass)."""
        out = []
        for metric, rule in self.floor.items():
            op, bound = parse_floor(metric, rule)
            value = float(metrics.get(metric, float("nan")))
            if not floor_passes(value, op, bound):
                out.append(f"{metric} {value:.4f} fails the floor {op} {bound:g}")
        return out


class ModelConfig(_Cfg):
    """What every model kind's config has (a kind's own config class adds the rest)."""

    name: str
    kind: str  # a model kind of the registry (training.kinds)
    dataset: str = "synthetic"
    feature_service: str | None = None  # None: the kind's own
    label: str | None = None
    exclude_features: list[str] = []
    estimator: dict[str, Any] = {}
    search_space: dict[str, SearchParam] = {}
    tuning: TuningConfig = TuningConfig()
    metric: MetricConfig = MetricConfig()
    promotion: GateConfig = GateConfig()
    registered_name: str | None = None

    @model_validator(mode="after")
    def _first_trial_in_space(self) -> ModelConfig:
        """The estimator's value of a searched parameter is the study's first trial: it must
        lie in the search space."""
        for name, p in self.search_space.items():
            if name not in self.estimator:
                continue
            v = self.estimator[name]
            if p.type == "categorical":
                if v not in (p.choices or []):
                    raise ValueError(
                        f"estimator.{name} {v!r} is not one of search_space.{name}.choices "
                        f"{p.choices} (the first trial uses the estimator's values)"
                    )
            elif (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not (p.low or 0) <= v <= (p.high or 0)
            ):
                raise ValueError(
                    f"estimator.{name} {v!r} is outside search_space.{name} [{p.low}, {p.high}] "
                    "(the first trial uses the estimator's values)"
                )
        return self

    @property
    def model_name(self) -> str:
        """Name in the MLflow registry."""
        return self.registered_name or self.name

    def study_key(self) -> list[Any]:
        """What, besides the data, makes trials comparable: another space, estimator or
        metric is another study. Kinds add what their fits also depend on."""
        return [
            self.estimator,
            self.model_dump(mode="json")["search_space"],
            self.metric.name,
        ]


class SplitConfig(_Cfg):
    """``time``: train on earlier snapshots, validate and test on later ones.
    ``stratified``: k-fold cross-validation for sources with a single snapshot; a held-out
    share is the test set.
    """

    kind: Literal["time", "stratified"] = "time"
    valid_snapshots: int = Field(1, ge=1)
    test_snapshots: int = Field(2, ge=1)
    # True: validation and test customers are both held out of training; "valid": only the
    # validation customers are (the test set is every customer at the test snapshots; with
    # the embargo no test customer has a positive training label, so overlap cannot leak)
    customer_disjoint: bool | Literal["valid"] = False
    # training rows must have labels known before the first test snapshot: a snapshot's label
    # ("leaves within 90 days") is only observed 90 days later (0: no embargo)
    embargo_days: int = Field(0, ge=0, le=3650)
    test_share: float = Field(0.2, gt=0, lt=0.9)
    folds: int = Field(5, ge=2, le=20)


class BinaryMetric(_Cfg):
    name: Literal["roc_auc", "pr_auc", "brier"] = "roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"


class BusinessConfig(_Cfg):
    """Retention economics for churn thresholds: contact cost, value saved, save rate."""

    contact_cost: float = Field(15.0, ge=0)
    customer_value: float = Field(350.0, gt=0)
    save_rate: float = Field(0.3, gt=0, le=1)


class TabularConfig(ModelConfig):
    """A model of a labels table joined point-in-time with a FeatureService (churn, and any
    binary "does X happen within the horizon" kind)."""

    split: SplitConfig = SplitConfig()
    metric: BinaryMetric = BinaryMetric()  # type: ignore[assignment]
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    business: BusinessConfig = BusinessConfig()
    reason_codes: int = Field(3, ge=0, le=20)
    # weight each training row by exp(-d / season_weight_months), d the months between its
    # calendar month and the nearest test month's (Dec-Jan is 1): drivers that follow the
    # season (heating bills) then count as they will in the months being predicted
    season_weight_months: float | None = Field(None, gt=0, le=24)

    @model_validator(mode="after")
    def _season_needs_time(self) -> TabularConfig:
        if self.season_weight_months is not None and self.split.kind != "time":
            raise ValueError(
                "season_weight_months needs split.kind: time (a stratified split has no months "
                "to predict)"
            )
        return self

    def study_key(self) -> list[Any]:
        extra = [self.season_weight_months] if self.season_weight_months else []
        return [*super().study_key(), *extra]


def _configs() -> Path:
    return configs_dir() / "models"


def config_path(name_or_path: str | Path) -> Path:
    """``configs/models/<name>.yaml`` for a name, or the path itself."""
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else _configs() / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(x.stem for x in _configs().glob("*.yaml"))
        raise ConfigError(f"no model config {path} (known models: {', '.join(known)})")
    return path


def load_model_config(
    name_or_path: str | Path, *, settings: Settings | None = None, **overrides: Any
) -> ModelConfig:
    """Load ``configs/models/<name>.yaml`` (or a path) with overrides, validated by its kind's
    config class; errors name the field. ``settings``: where extra kinds are registered."""
    from training.kinds import get_kind

    path = config_path(name_or_path)
    data = deep_merge(read_yaml(path), {k: v for k, v in overrides.items() if v is not None})
    if "kind" not in data:
        raise ConfigError(f"{path}: invalid config: kind: Field required (a model kind)")
    kind = get_kind(str(data["kind"]), settings)
    return validate(kind.config, data, str(path))


def config_name(path: Path) -> str:
    """How a config is referred to: its name under ``configs/models``, else its path."""
    try:
        if path.resolve().parent == _configs().resolve():
            return path.stem
    except OSError:
        pass
    return str(path.resolve())


def find_model_config(kind: str, dataset: str = "synthetic") -> Path:
    """The config under ``configs/models`` of ``kind`` on ``dataset`` (exactly one)."""
    found = []
    for p in sorted(_configs().glob("*.yaml")):
        raw = read_yaml(p)
        if raw.get("kind") == kind and raw.get("dataset", "synthetic") == dataset:
            found.append(p)
    if len(found) == 1:
        return found[0]
    if not found:
        have = sorted(
            {
                str(read_yaml(p).get("dataset", "synthetic"))
                for p in _configs().glob("*.yaml")
                if read_yaml(p).get("kind") == kind
            }
        )
        raise ConfigError(
            f"no config of kind {kind!r} for dataset {dataset!r} in {_configs()}"
            + (f" (datasets with one: {', '.join(have)})" if have else "")
            + "; pass --model-config PATH"
        )
    raise ConfigError(
        f"{len(found)} configs of kind {kind!r} for dataset {dataset!r}: "
        f"{', '.join(p.name for p in found)}; pass --model-config PATH"
    )


def registered_config(name: str) -> Path:
    """The config under ``configs/models`` whose model registers as ``name``."""
    for p in sorted(_configs().glob("*.yaml")):
        raw = read_yaml(p)
        if raw.get("registered_name", raw.get("name")) == name:
            return p
    raise ConfigError(f"no config under {_configs()} registers a model named {name!r}")
