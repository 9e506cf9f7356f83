"""Monitoring settings (``configs/monitoring.yaml``): drift thresholds, segments, alerts.

Validated once by pydantic; commands receive the object. ``WATTWISE_MONITORING_*`` environment
variables override keys (``WATTWISE_MONITORING_ALERTS__WEBHOOK_URL=http://...``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wattwise.config import MONITORING_ENV, load_config
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w`` -> timedelta; anything else is a :class:`ConfigError`."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) <= 0:
        raise ConfigError(f"bad duration {text!r}: use a positive number and s, m, h, d or w (7d)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftConfig(_Cfg):
    """Per-column tests (Evidently's defaults unless set) and the window-level decision."""

    method: str | None = Field(None, description="one stat test for every column (None: default)")
    num_method: str | None = None
    cat_method: str | None = None
    threshold: float | None = Field(None, gt=0, description="None: the method's default")
    num_threshold: float | None = Field(None, gt=0)
    cat_threshold: float | None = Field(None, gt=0)
    per_column_threshold: dict[str, float] = {}
    drift_share: float = Field(
        0.5, gt=0, le=1, description="window drift when this share of features drifted"
    )
    min_drifted_features: int = Field(
        0, ge=0, description="window drift when this many features drifted (0: share only)"
    )
    ignore_columns: list[str] = Field(
        default_factory=list,
        description="reported but never alert (features that drift by design, e.g. ages)",
    )
    prediction_alert: bool = Field(True, description="prediction drift alone flags the window")
    max_current_rows: int = Field(
        20_000, ge=100, description="rows of the window the stat tests use (seeded sample)"
    )
    min_rows: int = Field(100, ge=1, description="fewer logged rows: status 'insufficient'")
    html_max_columns: int = Field(
        25, ge=0, description="columns drawn in the HTML, drifted first (0: all; JSON has all)"
    )
    seed: int = 0


class QualityConfig(_Cfg):
    """Missing values and values outside the reference's range, per feature."""

    missing_increase: float = Field(
        0.05, ge=0, le=1, description="alert: missing share above the reference's by this much"
    )
    out_of_range_max: float = Field(
        0.02, ge=0, le=1, description="alert: share of values outside the reference range"
    )
    range_quantiles: tuple[float, float] = (0.0, 1.0)
    per_column_out_of_range: dict[str, float] = Field(
        default_factory=dict, description="column -> its own out_of_range_max"
    )
    per_column_missing_increase: dict[str, float] = Field(
        default_factory=dict, description="column -> its own missing_increase"
    )
    min_features: int = Field(
        1, ge=1, description="alert when at least this many features pass a quality limit"
    )


class UsageConfig(_Cfg):
    """The usage view (``serving/monitoring/usage.py``): the window's interval reads against
    the same customers' previous windows (a rolling, same-season reference)."""

    dataset: Path | None = Field(
        None,
        description="dataset with interval_reads and meters: a NAME under the data dir or a "
        "path (relative: from the project root); None: usage view skipped",
    )
    baseline: int = Field(8, ge=1, le=52, description="previous windows used as the reference")
    level_rise: float = Field(0.10, gt=0, description="alert: median usage ratio above 1 + this")
    level_fall: float = Field(0.25, gt=0, lt=1, description="alert: median ratio below 1 - this")
    jump_factor: float = Field(3.0, gt=1, description="a customer's level changed this many times")
    jump_share_max: float = Field(0.005, ge=0, le=1, description="alert: share of jumped meters")
    high_kw: float = Field(6.0, gt=0, description="power of a high evening read (kW)")
    high_intervals: int = Field(3, ge=1, description="high evening reads that make a new load")
    evening_hours: tuple[int, int] = (17, 2)
    new_high_share_max: float = Field(
        0.005, ge=0, le=1, description="alert: share of customers with a new high evening load"
    )
    missing_increase: float = Field(
        0.05, ge=0, le=1, description="alert: missing share of expected reads up by this"
    )
    min_customers: int = Field(50, ge=1, description="fewer customers in both: no usage check")
    min_flagged: int = Field(3, ge=1, description="count rules need at least this many customers")
    threads: int = Field(2, ge=1, le=64)

    @field_validator("evening_hours")
    @classmethod
    def _hours(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(0 <= h <= 23 for h in v) or v[0] == v[1]:
            raise ValueError("two different hours 0-23, e.g. [17, 2]")
        return v


class SegmentConfig(_Cfg):
    """Drift per segment: segment name -> the logged column that holds it."""

    columns: dict[str, str] = {
        "region": "region",
        "tariff": "rate_current_tariff",
        "dwelling_type": "dwelling_type",
    }
    min_rows: int = Field(200, ge=10, description="smaller segments are skipped")
    max_values: int = Field(20, ge=1, description="largest values of a segment column tested")
    max_rows: int = Field(5000, ge=100, description="rows per segment value the tests use")


class PerformanceConfig(_Cfg):
    """Performance once labels arrive: alert when a metric falls this far below training."""

    max_drop: dict[str, float] = {"roc_auc": 0.05, "pr_auc": 0.05}
    max_rise: dict[str, float] = {"brier": 0.02}
    period: Literal["D", "W", "M"] = "W"
    min_labels: int = Field(100, ge=10)


class AlertConfig(_Cfg):
    """Where alerts go besides the log (a webhook that receives JSON)."""

    webhook_url: str | None = None
    timeout_s: float = Field(5.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class WatchConfig(_Cfg):
    """``wattwise drift watch``: which models (None: every monitored model kind of the
    registry, training.kinds), how often, over which window."""

    models: list[str] | None = None
    every: str = "1d"
    window: str = "7d"

    @field_validator("every", "window")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class MonitoringConfig(_Cfg):
    """Everything ``wattwise drift`` needs; one validated object passed down."""

    reference_rows: int = Field(5000, ge=100, description="training rows kept as the reference")
    window: str = "7d"
    predlog_root: Path | None = Field(None, description="None: <data_dir>/predlog")
    drift: DriftConfig = DriftConfig()
    quality: QualityConfig = QualityConfig()
    usage: UsageConfig = UsageConfig()
    segments: SegmentConfig = SegmentConfig()
    performance: PerformanceConfig = PerformanceConfig()
    alerts: AlertConfig = AlertConfig()
    watch: WatchConfig = WatchConfig()
    mlflow_experiment: str = "monitoring"

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_duration(v)
        return v


def load_monitoring_config(path: Path | None = None) -> MonitoringConfig:
    """Load ``configs/monitoring.yaml`` (or ``path``) with ``WATTWISE_MONITORING_*`` overrides."""
    return load_config(
        MonitoringConfig,
        path or configs_dir() / "monitoring.yaml",
        env_prefix=MONITORING_ENV,
    )
