"""``--data NAME|PATH`` as a shell user expects it: a relative path is from the current
directory (it used to be resolved against features/repo), and a missing dataset is one line
that names it before anything loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wattwise.app.cli import main

pytestmark = [pytest.mark.integration]


def run(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
        raise SystemExit(0)
    return int(done.value.code or 0)


def test_features_apply_and_materialize_take_a_path_from_the_cwd(
    tiny_feature_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "elsewhere"
    ds = work / "data" / "mine"
    shutil.copytree(tiny_feature_store, ds, ignore=shutil.ignore_patterns("feast"))
    monkeypatch.chdir(work)
    monkeypatch.setenv("WATTWISE_PATHS__DATA_DIR", str(tmp_path / "not-here"))
    assert run("features", "apply", "--data", "data/mine") == 0
    assert (ds / "feast" / "registry.db").is_file()
    assert run("features", "materialize", "--data", "./data/mine") == 0
    assert (ds / "feast" / "online.db").is_file()


def test_a_missing_dataset_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("features", "build", "--data", "data/nope") == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "data" / "nope") in err and "Traceback" not in err
    assert run("train", "churn", "--data", "./nope") == 2
    assert "nope" in capsys.readouterr().err
