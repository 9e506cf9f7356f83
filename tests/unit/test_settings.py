from __future__ import annotations

from pathlib import Path

import pytest

from wattwise.config import deep_merge, env_overrides
from wattwise.errors import ConfigError
from wattwise.settings import load_settings


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "settings.yaml"
    p.write_text(text)
    return p


def test_defaults_resolve_against_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTWISE_HOME", str(tmp_path))
    s = load_settings(_write(tmp_path, "seed: 3\n"))
    assert s.seed == 3
    assert s.data_dir == tmp_path / "data"
    assert s.tracking_uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert s.artifact_root == tmp_path / "mlruns" / "artifacts"


def test_environment_overrides_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTWISE_HOME", str(tmp_path))
    monkeypatch.setenv("WATTWISE_SEED", "11")
    monkeypatch.setenv("WATTWISE_PATHS__DATA_DIR", "/elsewhere/data")
    s = load_settings(_write(tmp_path, "seed: 3\npaths: {data_dir: data}\n"))
    assert s.seed == 11
    assert s.data_dir == Path("/elsewhere/data")


def test_env_overrides_parse_scalars() -> None:
    got = env_overrides("WW", {"WW_A__B": "2", "WW_C": "true", "OTHER": "x"})
    assert got == {"a": {"b": 2}, "c": True}


def test_unknown_key_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="paths.data_dirr"):
        load_settings(_write(tmp_path, "paths: {data_dirr: x}\n"))


def test_bad_value_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mlflow.tracking_uri"):
        load_settings(_write(tmp_path, "mlflow: {tracking_uri: ./mlruns}\n"))


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(_write(tmp_path, "seed: [1,\n"))


def test_repo_settings_file_is_valid() -> None:
    s = load_settings()
    assert s.mlflow.tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert s.tracking_uri.endswith("/mlruns/mlflow.db")


def test_deep_merge_merges_nested_keys_and_an_empty_mapping_clears_one() -> None:
    base = {"promotion": {"metric": "roc_auc", "floor": {"roc_auc": ">= 0.55"}}, "seed": 1}
    merged = deep_merge(base, {"promotion": {"floor": {"qini": "> 0"}}, "seed": 2})
    assert merged == {
        "promotion": {"metric": "roc_auc", "floor": {"roc_auc": ">= 0.55", "qini": "> 0"}},
        "seed": 2,
    }
    cleared = deep_merge(base, {"promotion": {"floor": {}}})
    assert cleared["promotion"] == {"metric": "roc_auc", "floor": {}}
    assert base["promotion"]["floor"] == {"roc_auc": ">= 0.55"}  # the inputs are untouched


def test_extra_kinds_must_be_module_attribute_refs(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("kinds: ['mypkg.forecast:KIND', 'other_pkg.kinds']\n")
    assert load_settings(p).kinds == ["mypkg.forecast:KIND", "other_pkg.kinds"]
    p.write_text("kinds: ['not a module:KIND']\n")
    with pytest.raises(ConfigError, match="kinds"):
        load_settings(p)
