"""The shared pieces of the CLI's vocabulary: dataset names and paths, dates, exit codes,
and environment variables that belong to other configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.datasets import WORLD_MANIFEST, resolve_dataset
from wattwise.cli_types import parse_day, parse_month
from wattwise.config import env_overrides
from wattwise.errors import EXIT_CODES, EmptyResultError, nothing


def test_data_name_is_under_the_data_dir_and_a_path_is_from_cwd(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "powerco").mkdir(parents=True)
    by_name = resolve_dataset("powerco", data_dir, cwd=tmp_path / "elsewhere")
    assert by_name.path == (data_dir / "powerco").resolve()
    assert by_name.name == "powerco" and by_name.exists
    by_path = resolve_dataset("data/powerco", tmp_path / "not-data", cwd=tmp_path)
    assert by_path.path == (data_dir / "powerco").resolve() and by_path.exists
    missing = resolve_dataset("./nope", data_dir, cwd=tmp_path)
    assert not missing.exists and missing.name == "nope"


def test_a_generated_world_is_named_synthetic_wherever_it_lives(tmp_path: Path) -> None:
    hw = tmp_path / "hw"
    hw.mkdir()
    (hw / WORLD_MANIFEST).write_text(json.dumps({}))
    assert resolve_dataset(str(hw), tmp_path).name == "synthetic"


@pytest.mark.parametrize(
    ("text", "day", "month"),
    [("2024-07-01", "2024-07-01", "2024-07"), ("2024-07", "2024-07-01", "2024-07")],
)
def test_dates_and_months_accept_iso_days_and_months(text: str, day: str, month: str) -> None:
    assert parse_day(text).isoformat() == day
    assert parse_month(text) == month


@pytest.mark.parametrize("bad", ["July", "0001-07", "2024-13", "2024-07-32", "24-07", ""])
def test_bad_dates_name_the_accepted_form(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day(bad)


def test_settings_leave_other_configs_variables_alone() -> None:
    env = {
        "WATTWISE_SEED": "7",
        "WATTWISE_MONITORING_USAGE__DATASET": "synthetic",
        "WATTWISE_MONITORING_ALERTS__WEBHOOK_URL": "http://x",
        "WATTWISE_FEATURES_DIR": "/x",
        "WATTWISE_BENCH_WORLD": "/w",
    }
    assert env_overrides("WATTWISE", env) == {"seed": 7}
    assert env_overrides("WATTWISE_MONITORING", env) == {
        "usage": {"dataset": "synthetic"},
        "alerts": {"webhook_url": "http://x"},
    }


def test_settings_load_with_a_monitoring_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from wattwise.settings import load_settings

    monkeypatch.setenv("WATTWISE_MONITORING_USAGE__DATASET", "synthetic")
    monkeypatch.setenv("WATTWISE_MONITORING_ALERTS__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    assert load_settings().seed >= 0


def test_nothing_raises_unless_allowed() -> None:
    with pytest.raises(EmptyResultError, match="0 scored") as exc:
        nothing("0 scored")
    assert exc.value.exit_code == 4 and 4 in EXIT_CODES
    assert nothing("0 scored", allow_empty=True) == "0 scored"
