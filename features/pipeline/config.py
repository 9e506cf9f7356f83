"""Settings of the feature pipeline (defaults here, overrides in ``configs/features.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from wattwise.config import FEATURES_ENV, load_config


class FeatureConfig(BaseModel):
    """Windows, thresholds and engine settings; one validated object passed down the build."""

    window_days: int = Field(7, ge=1, le=60, description="days of reads in the windows group")
    windows_all_snapshots: bool = Field(True, description="False: only the last snapshot")
    kmeans_k: int = Field(6, ge=2, le=50)
    seed: int = 42
    heating_balance_c: list[float] = Field(default_factory=lambda: [12.0, 14.0, 16.0, 18.0])
    cooling_balance_c: list[float] = Field(default_factory=lambda: [18.0, 20.0, 22.0, 24.0])
    min_fit_days: int = Field(30, ge=5, description="fewer days: no sensitivity fit")
    ev_kw: float = Field(3.0, gt=0, description="overnight kW threshold of the EV signature")
    anomaly_z: float = Field(3.0, gt=0)
    complete_day_share: float = Field(0.9, gt=0, le=1, description="share of intervals a day needs")
    area_bands_m2: list[float] = Field(default_factory=lambda: [75.0, 125.0, 200.0])
    threads: int = Field(2, ge=1)
    memory_limit: str = "6GB"


def load_feature_config(path: Path | None = None, **overrides: object) -> FeatureConfig:
    """Load ``configs/features.yaml`` (or ``path``) with ``WATTWISE_FEATURES_*`` overrides."""
    if path is None:
        path = Path(__file__).resolve().parents[2] / "configs" / "features.yaml"
        if not path.is_file():
            return FeatureConfig(**overrides)  # type: ignore[arg-type]
    return load_config(FeatureConfig, path, overrides=overrides, env_prefix=FEATURES_ENV)
