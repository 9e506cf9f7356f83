"""The root CLI: groups listed, user errors as one line, tracebacks only with --verbose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPS = ["data", "features", "train", "registry", "serve", "score", "dr", "drift", "demo"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattwise.app.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_group() -> None:
    res = run("--help")
    assert res.returncode == 0
    for g in GROUPS:
        assert g in res.stdout


def test_every_group_has_help() -> None:
    for g in GROUPS:
        res = run(g, "--help")
        assert res.returncode == 0, (g, res.stderr)
        assert "Usage" in res.stdout


def test_bad_config_path_is_one_line_without_traceback(tmp_path: Path) -> None:
    res = run(
        "data", "generate", "--world", str(tmp_path / "missing.yaml"), "--data", str(tmp_path / "o")
    )
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "config file not found" in res.stderr
    assert len([ln for ln in res.stderr.strip().splitlines() if ln.strip()]) <= 2


def test_verbose_shows_traceback(tmp_path: Path) -> None:
    res = run("--verbose", "data", "generate", "--world", str(tmp_path / "missing.yaml"))
    assert res.returncode != 0
    assert "Traceback" in res.stderr


def test_bad_option_value_exits_nonzero() -> None:
    res = run("data", "generate", "--customers", "many")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0 and res.stdout.startswith("wattwise ")


def test_flags_are_shown_as_flags() -> None:
    res = run("train", "churn", "--help")
    assert "--no-promote" in res.stdout and "<bool>" not in res.stdout


def test_a_bad_date_is_refused_naming_the_option_and_form() -> None:
    res = run("dr", "plan", "--date", "July", "--target-mw", "1")
    assert res.returncode == 2 and "--date" in res.stderr and "YYYY-MM-DD" in res.stderr


def test_an_import_that_loads_nothing_exits_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("meter_id,timestamp,kwh\nM1,2024-01-01 00:00,-1\nM1,2024-01-01 01:00,-2\n")
    args = ("data", "import", "csv", str(bad), "--data", str(tmp_path / "ds"))
    res = run(*args)
    assert res.returncode == 4, res.stderr
    assert "0 rows loaded" in res.stderr and "Traceback" not in res.stderr
    assert run(*args, "--allow-empty").returncode == 0
