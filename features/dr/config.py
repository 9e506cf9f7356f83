"""``configs/dr.yaml``: baseline, settlement, evaluation and planning settings, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wattwise.config import read_yaml, validate
from wattwise.paths import configs_dir


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaselineConfig(_Cfg):
    """How each baseline picks its comparison days and fits its model (see features/dr/baselines)."""

    lookback_days: int = Field(45, ge=5, le=400)
    weekday_days: int = Field(10, ge=1, le=60)
    weekend_days: int = Field(4, ge=1, le=30)
    min_days: int = Field(5, ge=1, le=60)
    high_days: int = Field(5, ge=1, le=60)
    middle_drop: int = Field(1, ge=0, le=10)
    adjustment_hours: tuple[int, int] = (4, 2)
    adjustment_cap: float = Field(0.4, ge=0, le=5)
    holidays: Literal["us", "none"] = "us"
    regression_days: int = Field(90, ge=14, le=730)
    occupancy_threshold: float = Field(0.65, gt=0, lt=1)
    temperature_knots_f: tuple[float, ...] = (30, 45, 55, 65, 75, 90)
    min_bin_hours: int = Field(20, ge=0)
    ridge: float = Field(1e-3, ge=0)
    lgbm_days: int = Field(60, ge=7, le=730)
    lgbm_profile_days: int = Field(14, ge=3, le=60)
    lgbm_max_rows: int = Field(100_000, ge=1000)
    lgbm_rounds: int = Field(60, ge=10, le=5000)
    lgbm_learning_rate: float = Field(0.1, gt=0, le=1)
    lgbm_leaves: int = Field(31, ge=2, le=1024)
    lgbm_max_bin: int = Field(63, ge=15, le=1023)
    lgbm_threads: int = Field(1, ge=1, le=64)
    blas_threads: int = Field(1, ge=1, le=64)
    threads: int = Field(2, ge=1, le=8)

    @model_validator(mode="after")
    def _check(self) -> BaselineConfig:
        a, b = self.adjustment_hours
        if not a >= b >= 1:
            raise ValueError(
                "adjustment_hours must be [first, last] hours before the start, first >= last >= 1"
            )
        if self.high_days > self.weekday_days or 2 * self.middle_drop >= self.weekday_days:
            raise ValueError("high_days and 2*middle_drop must be below weekday_days")
        if list(self.temperature_knots_f) != sorted(self.temperature_knots_f):
            raise ValueError("temperature_knots_f must be increasing")
        return self

    @property
    def history_days(self) -> int:
        """Days of reads before an event that every baseline together needs."""
        return max(
            self.lookback_days, self.regression_days, self.lgbm_days + self.lgbm_profile_days
        )


class SettlementConfig(_Cfg):
    method: Literal["caiso_10of10", "high_5of10", "middle_8of10", "towt", "lgbm"] = "caiso_10of10"
    lag_hours: float = Field(24, ge=0)
    bootstrap: int = Field(1000, ge=50, le=100_000)
    seed: int = 7


class EvaluationConfig(_Cfg):
    placebo_days: int = Field(20, ge=1, le=365)
    placebo_hours: tuple[int, int] = (16, 19)


class PlanningConfig(_Cfg):
    """How `dr plan` and ``POST /dr/target`` choose customers (training.dr.plan), and the
    defaults of a proposed event that leaves notice or incentive out."""

    confidence: float = Field(0.9, gt=0.5, lt=1)
    call_cost_per_customer: float = Field(0.0, ge=0)
    default_incentive_per_kwh: float = Field(1.0, ge=0)
    default_notice_hours: float = Field(24.0, ge=0, le=168)


class DRConfig(_Cfg):
    baselines: BaselineConfig = BaselineConfig()
    settlement: SettlementConfig = SettlementConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    planning: PlanningConfig = PlanningConfig()


def load_dr_config(path: Path | None = None) -> DRConfig:
    """Load ``configs/dr.yaml`` (or ``path``); errors name the field."""
    p = path or configs_dir() / "dr.yaml"
    return validate(DRConfig, read_yaml(p), str(p))
