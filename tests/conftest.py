"""Shared fixtures: one tiny synthetic utility per test session, settings in a temp root."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.synth.config import WorldConfig, load_world_config
from features.synth.generate import GenerateSummary, generate
from wattwise.settings import Settings, load_settings

TINY = {"customers": 120, "days": 400, "chunk_customers": 60, "workers": 2, "seed": 7}


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The project's settings (for paths such as ../shared/data)."""
    return load_settings()


@pytest.fixture(scope="session")
def shared_data(settings: Settings) -> Path:
    """The real public data folder, or skip when it is absent."""
    d = settings.shared_data_dir
    if not d.is_dir():
        pytest.skip(f"real data not found at {d} (../shared/data is absent on this machine)")
    return d


@pytest.fixture(scope="session")
def tiny_world_config() -> WorldConfig:
    return load_world_config(**TINY)


@pytest.fixture(scope="session")
def tiny_world(
    tmp_path_factory: pytest.TempPathFactory, tiny_world_config: WorldConfig
) -> GenerateSummary:
    """One tiny synthetic utility (120 homes × 400 days, 30-min) shared by every test."""
    out = tmp_path_factory.mktemp("world") / "synthetic"
    return generate(tiny_world_config, out)
