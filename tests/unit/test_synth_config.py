from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from features.synth.config import load_world_config
from wattwise.errors import ConfigError


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customers": -5}, "customers"),
        ({"days": 0}, "days"),
        ({"interval_minutes": 20}, "interval_minutes"),
        ({"scenario": "meteor"}, "scenario"),
        ({"tariffs": {"initial_mix": {"flat": 0.5, "bitcoin": 0.5}}}, "tariffs"),
        ({"scenario": "heat_wave", "scenario_start": "2023-01-01"}, "scenario_start"),
    ],
)
def test_bad_world_config_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_world_config(**overrides)


def test_unknown_region_is_named() -> None:
    with pytest.raises(ConfigError, match="atlantis"):
        load_world_config(regions=["coastal", "atlantis"])


def test_overrides_apply() -> None:
    cfg = load_world_config(customers=10, interval_minutes=15, regions=["inland"])
    assert cfg.customers == 10 and cfg.steps_per_day == 96
    assert [r.name for r in cfg.regions] == ["inland"]


def test_cli_bad_config_is_one_line(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattwise.app.cli",
            "data",
            "generate",
            "--customers",
            "-3",
            "--data",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "customers" in res.stderr and "Traceback" not in res.stderr
