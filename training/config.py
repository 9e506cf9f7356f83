"""Model configs (``configs/models/NAME.yaml``): what differs between models is data.

A config names the FeatureService, the label, the split, the estimator and its search space,
the metric to optimise, the promotion gate and business costs; the model *spec* (a small
object in :mod:`training.specs`) says how to turn a training set into X and y and how to
evaluate. Everything else is one pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wattwise.config import deep_merge, read_yaml, validate
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    name: Literal["roc_auc", "pr_auc", "brier", "qini"] = "roc_auc"
    direction: Literal["maximize", "minimize"] = "maximize"


class GateConfig(_Cfg):
    """A candidate replaces the champion when ``metric`` improves by at least ``min_delta``
    and no guard metric regresses by more than its allowance."""

    metric: str = "roc_auc"
    higher_is_better: bool = True
    min_delta: float = 0.0
    guards: dict[str, float] = {}


class BusinessConfig(_Cfg):
    """Retention economics for churn thresholds: contact cost, value saved, save rate."""

    contact_cost: float = Field(15.0, ge=0)
    customer_value: float = Field(350.0, gt=0)
    save_rate: float = Field(0.3, gt=0, le=1)


class ModelConfig(_Cfg):
    name: str
    spec: str  # a key of training.spec.SPECS
    dataset: str = "synthetic"
    feature_service: str
    label: str
    exclude_features: list[str] = []
    split: SplitConfig = SplitConfig()
    estimator: dict[str, Any] = {}
    search_space: dict[str, SearchParam] = {}
    tuning: TuningConfig = TuningConfig()
    metric: MetricConfig = MetricConfig()
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    promotion: GateConfig = GateConfig()
    business: BusinessConfig = BusinessConfig()
    reason_codes: int = Field(3, ge=0, le=20)
    programs: list[str] = []
    registered_name: str | None = None
    # weight each training row by exp(-d / season_weight_months), d the months between its
    # calendar month and the nearest test month's (Dec-Jan is 1): drivers that follow the
    # season (heating bills) then count as they will in the months being predicted
    season_weight_months: float | None = Field(None, gt=0, le=24)

    @field_validator("spec")
    @classmethod
    def _known_spec(cls, v: str) -> str:
        from training.spec import SPECS

        if v not in SPECS:
            raise ValueError(f"unknown spec {v!r}; known: {', '.join(sorted(SPECS))}")
        return v

    @model_validator(mode="after")
    def _season_needs_time(self) -> ModelConfig:
        if self.season_weight_months is not None and self.split.kind != "time":
            raise ValueError(
                "season_weight_months needs split.kind: time (a stratified split has no months "
                "to predict)"
            )
        return self

    @property
    def model_name(self) -> str:
        """Name in the MLflow registry."""
        return self.registered_name or self.name


def load_model_config(name_or_path: str | Path, **overrides: Any) -> ModelConfig:
    """Load ``configs/models/<name>.yaml`` (or a path) with overrides; errors name the field."""
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else configs_dir() / "models" / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(x.stem for x in (configs_dir() / "models").glob("*.yaml"))
        raise ConfigError(f"no model config {path} (known models: {', '.join(known)})")
    data = deep_merge(read_yaml(path), {k: v for k, v in overrides.items() if v is not None})
    return validate(ModelConfig, data, str(path))
