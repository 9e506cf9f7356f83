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

from training.config import GateConfig, ModelConfig, TuningConfig

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


class DisaggTuning(TuningConfig):
    """Tuning of a network: ``trial_seconds`` caps one fit (None: epochs decide); torch runs
    on ``threads`` CPU threads (small networks gain little from more)."""

    trial_seconds: float | None = Field(None, gt=0)
    threads: int = Field(1, ge=1, le=64)


class DisaggConfig(ModelConfig):
    data: Literal["synthetic", "redd"] = "synthetic"
    appliances: list[str]
    on_thresholds_w: dict[str, float] = {}
    resample_seconds: int = Field(60, ge=3, le=3600)  # REDD only
    split: DisaggSplit = DisaggSplit()
    tuning: DisaggTuning = DisaggTuning()
    metric: DisaggMetric = DisaggMetric()  # type: ignore[assignment]
    promotion: GateConfig = GateConfig(metric="skill")
    classical: dict[str, Any] = {}
    # other architectures fitted with the tuned parameters and reported beside the network
    compare_archs: list[Literal["seq2point", "tcn"]] = []
    detection_kwh_per_month: dict[str, float] = {}
    seed: int = 42
    # the promotion gate's test set: per test home this many windows of this many days
    gate_windows: int = Field(4, ge=1, le=64)
    gate_window_days: float = Field(7.0, gt=0, le=60)

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

    def study_key(self) -> list[Any]:
        return [*super().study_key(), self.appliances, self.seed]


def load_disagg_config(name_or_path: str | Path, **overrides: Any) -> DisaggConfig:
    """``load_model_config`` for a config that must be of the disaggregation kind."""
    from training.config import load_model_config
    from wattwise.errors import ConfigError

    cfg = load_model_config(name_or_path, **overrides)
    if not isinstance(cfg, DisaggConfig):
        raise ConfigError(f"{name_or_path} is a {cfg.kind} config, not a disaggregation one")
    return cfg
