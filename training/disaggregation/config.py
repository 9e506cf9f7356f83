"""Disaggregation model configs (``configs/models/disaggregation*.yaml``).

:class:`training.config.ModelConfig` describes tabular binary models (FeatureService, label,
calibration); a NILM model needs appliances, on/off thresholds, an unseen-homes or
time-ordered split and a network. This config keeps the parts the training platform reads
with the same names and types (``estimator``, ``search_space`` of
:class:`training.config.SearchParam`, ``tuning`` of :class:`training.config.TuningConfig`,
``metric.direction``), so :func:`training.tuning.tune` runs it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from training.config import SearchParam, TuningConfig
from wattwise.config import deep_merge, read_yaml, validate
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir

# cycles a network can read as input channels (sin/cos of the phase); see estimators.py
TIME_FEATURES = ("day", "week")


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DisaggMetric(_Cfg):
    """Tuning maximises skill: 1 − mean over appliances of MAE / mean-baseline MAE."""

    name: Literal["skill"] = "skill"
    direction: Literal["maximize"] = "maximize"


class DisaggSplit(_Cfg):
    """``homes``: train, validate and test on disjoint homes (unseen-home protocol).
    ``time``: one house, train on the first ``train_share`` of days, test on the rest; the
    last ``valid_share`` of the training days validate."""

    kind: Literal["homes", "time"] = "homes"
    valid_share: float = Field(0.2, gt=0, lt=0.5)
    test_share: float = Field(0.25, gt=0, lt=0.9)
    train_share: float = Field(0.7, gt=0, lt=1)


class DisaggConfig(_Cfg):
    name: str
    data: Literal["synthetic", "redd"] = "synthetic"
    dataset: str = "synthetic"
    appliances: list[str]
    on_thresholds_w: dict[str, float] = {}
    resample_seconds: int = Field(60, ge=3, le=3600)  # REDD only
    split: DisaggSplit = DisaggSplit()
    estimator: dict[str, Any] = {}
    search_space: dict[str, SearchParam] = {}
    tuning: TuningConfig = TuningConfig()
    metric: DisaggMetric = DisaggMetric()
    classical: dict[str, Any] = {}
    # other architectures fitted with the tuned parameters and reported beside the network
    compare_archs: list[Literal["seq2point", "tcn"]] = []
    detection_kwh_per_month: dict[str, float] = {}
    registered_name: str | None = None
    seed: int = 42

    @model_validator(mode="after")
    def _known(self) -> DisaggConfig:
        unknown = set(self.on_thresholds_w) - set(self.appliances)
        if unknown:
            raise ValueError(f"on_thresholds_w names appliances not modelled: {sorted(unknown)}")
        if not self.appliances:
            raise ValueError("appliances must not be empty")
        self._check_time_features()
        self._check_loss_weights()
        self._check_floors()
        return self

    def _check_floors(self) -> None:
        """``estimator.floor_candidates_w``: output floors (W) tried on the validation homes."""
        fc = self.estimator.get("floor_candidates_w")
        if fc is None:
            return
        if not isinstance(fc, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf")
            for v in fc
        ):
            raise ValueError(
                f"estimator.floor_candidates_w must be a list of numbers >= 0 (W), got {fc!r}"
            )

    def _check_time_features(self) -> None:
        """``estimator.time_features``: cycles the network reads as sin/cos input channels."""
        tf = self.estimator.get("time_features")
        if tf is None:
            return
        if not isinstance(tf, list) or not all(isinstance(f, str) for f in tf):
            raise ValueError(f"estimator.time_features must be a list of names, got {tf!r}")
        bad = sorted(set(tf) - set(TIME_FEATURES))
        if bad:
            raise ValueError(
                f"estimator.time_features: unknown {bad} (choose from {list(TIME_FEATURES)})"
            )
        if tf and self.data == "redd":
            raise ValueError(
                "estimator.time_features: REDD files give seconds from the recording's start, "
                "not clock time; leave time_features empty for data: redd"
            )

    def _check_loss_weights(self) -> None:
        """``estimator.loss_weights``: appliance → weight of its term in the training loss."""
        lw = self.estimator.get("loss_weights")
        if lw is None:
            return
        if not isinstance(lw, dict):
            raise ValueError(f"estimator.loss_weights must map appliance to weight, got {lw!r}")
        unknown = sorted(set(lw) - set(self.appliances))
        if unknown:
            raise ValueError(f"estimator.loss_weights names appliances not modelled: {unknown}")
        for a, w in lw.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < float("inf"):
                raise ValueError(f"estimator.loss_weights.{a} must be a number >= 0, got {w!r}")

    @property
    def model_name(self) -> str:
        return self.registered_name or self.name


def load_disagg_config(name_or_path: str | Path, **overrides: Any) -> DisaggConfig:
    """``configs/models/<name>.yaml`` (or a path) with overrides; errors name the field."""
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else configs_dir() / "models" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"no disaggregation config {path}")
    data = deep_merge(read_yaml(path), {k: v for k, v in overrides.items() if v is not None})
    return validate(DisaggConfig, data, str(path))
