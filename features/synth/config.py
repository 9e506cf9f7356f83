"""The synthetic utility's configuration (``configs/world.yaml``), validated once."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.schema import TARIFFS
from wattwise.config import deep_merge, read_yaml, validate
from wattwise.paths import configs_dir

SCENARIOS = ("none", "heat_wave", "price_rise", "ev_wave", "broken_meters")


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Cfg):
    """A service region: its climate drives weather, heating and cooling."""

    name: str
    climate_zone: str
    latitude: float = Field(ge=-70, le=70)
    utc_offset_hours: int = Field(ge=-12, le=14)
    mean_temp_c: float = Field(ge=-20, le=35)
    seasonal_amplitude_c: float = Field(ge=0, le=30)
    diurnal_amplitude_c: float = Field(ge=0, le=20)
    share: float = Field(gt=0, le=1, description="share of customers")


class TariffConfig(_Cfg):
    """Price per kWh by period; peak hours are local [peak_start, peak_end)."""

    flat_price: float = Field(0.16, gt=0)
    tou_offpeak: float = Field(0.11, gt=0)
    tou_peak: float = Field(0.34, gt=0)
    ev_overnight: float = Field(0.07, gt=0)
    ev_day: float = Field(0.19, gt=0)
    peak_start: int = Field(16, ge=0, le=23)
    peak_end: int = Field(21, ge=1, le=24)
    standing_charge_per_day: float = Field(0.45, ge=0)
    export_credit: float = Field(0.05, ge=0)
    initial_mix: dict[str, float] = {"flat": 0.82, "tou": 0.15, "ev": 0.03}

    @model_validator(mode="after")
    def _check(self) -> TariffConfig:
        unknown = set(self.initial_mix) - set(TARIFFS)
        if unknown:
            raise ValueError(f"unknown tariff(s) in initial_mix: {sorted(unknown)}")
        if self.peak_end <= self.peak_start:
            raise ValueError("peak_end must be after peak_start")
        return self


class BadReadsConfig(_Cfg):
    """Rates of meter problems per reading (gaps per meter-day)."""

    gap_day_rate: float = Field(0.002, ge=0, le=1)
    negative_rate: float = Field(2e-5, ge=0, le=0.1)
    spike_rate: float = Field(2e-5, ge=0, le=0.1)
    duplicate_rate: float = Field(2e-5, ge=0, le=0.1)


class DRConfig(_Cfg):
    """Demand-response season: events on the hottest (and some coldest) days."""

    summer_events: int = Field(12, ge=0, le=60)
    winter_events: int = Field(3, ge=0, le=30)
    min_hours: int = Field(2, ge=1, le=6)
    max_hours: int = Field(4, ge=1, le=8)
    control_share: float = Field(0.2, ge=0, le=0.9)
    incentives_per_kwh: tuple[float, ...] = (0.5, 1.0, 2.0)

    @model_validator(mode="after")
    def _hours(self) -> DRConfig:
        if self.max_hours < self.min_hours:
            raise ValueError("max_hours must be at least min_hours")
        return self


class ProgramsConfig(_Cfg):
    """Monthly offer campaigns: the share of eligible, consenting customers offered."""

    offer_share: float = Field(0.06, ge=0, le=1)


class WorldConfig(_Cfg):
    """Everything that defines one synthetic utility; same config and seed, same tables."""

    customers: int = Field(2000, gt=0, le=5_000_000)
    start: date = date(2024, 1, 1)
    days: int = Field(396, gt=0, le=3660)
    interval_minutes: Literal[15, 30, 60] = 30
    seed: int = Field(42, ge=0)
    regions: tuple[Region, ...]
    tariffs: TariffConfig = TariffConfig()
    bad_reads: BadReadsConfig = BadReadsConfig()
    dr: DRConfig = DRConfig()
    programs: ProgramsConfig = ProgramsConfig()
    appliance_truth_share: float = Field(
        0.1, ge=0, le=1, description="share of homes whose per-interval appliance loads are kept"
    )
    scenario: Literal["none", "heat_wave", "price_rise", "ev_wave", "broken_meters"] = "none"
    scenario_start: date | None = None
    chunk_customers: int = Field(250, gt=0, le=100_000)
    workers: int = Field(0, ge=0, le=256, description="0: all cores")

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        if not self.regions:
            raise ValueError("at least one region is needed")
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate region names: {names}")
        if self.scenario_start is not None and not (self.start < self.scenario_start < self.end):
            raise ValueError("scenario_start must fall after start and before the end")
        return self

    @property
    def end(self) -> date:
        """The day after the last generated day (exclusive end)."""
        return self.start + timedelta(days=self.days)

    @property
    def steps_per_day(self) -> int:
        return 1440 // self.interval_minutes

    @property
    def n_steps(self) -> int:
        return self.days * self.steps_per_day

    @property
    def effective_scenario_start(self) -> date:
        return self.scenario_start or self.start + timedelta(days=(self.days * 3) // 4)


def load_world_config(
    path: Path | None = None,
    *,
    regions: list[str] | None = None,
    **overrides: Any,
) -> WorldConfig:
    """Load ``configs/world.yaml`` (or ``path``) with CLI overrides; errors name the field."""
    src = path or configs_dir() / "world.yaml"
    data = read_yaml(src)
    data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    if regions:
        known = {str(r.get("name")): r for r in data.get("regions", []) if isinstance(r, dict)}
        missing = [r for r in regions if r not in known]
        if missing:
            from wattwise.errors import ConfigError

            raise ConfigError(
                f"{src}: regions: unknown region(s) {missing}; known: {sorted(known)}"
            )
        data["regions"] = [known[r] for r in regions]
    return validate(WorldConfig, data, str(src))
