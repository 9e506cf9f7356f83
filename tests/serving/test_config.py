"""Serving configs: the demo profile has auth off, production cannot be loaded with it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.config import hash_key, load_serving_config
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir


def test_local_demo_has_auth_off_and_production_on(monkeypatch: pytest.MonkeyPatch) -> None:
    local = load_serving_config(configs_dir() / "serving.yaml")
    assert local.profile == "local" and not local.auth.enabled
    prod = load_serving_config(configs_dir() / "serving.production.yaml")
    assert prod.profile == "production" and prod.auth.enabled and prod.predlog.key is None
    with pytest.raises(ConfigError, match="WW_PREDLOG_KEY"):
        prod.predlog.resolve_key()
    monkeypatch.setenv("WW_PREDLOG_KEY", "from-the-environment-0123")
    assert prod.predlog.resolve_key() == b"from-the-environment-0123"


def test_production_refuses_auth_off_or_a_key_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = configs_dir() / "serving.production.yaml"
    monkeypatch.setenv("WW_SERVING_AUTH__ENABLED", "false")
    with pytest.raises(ConfigError, match="auth.enabled must be true"):
        load_serving_config(prod)
    monkeypatch.delenv("WW_SERVING_AUTH__ENABLED")
    leaky = tmp_path / "p.yaml"
    leaky.write_text(prod.read_text().replace("key_env:", "key: oops-a-secret-in-git\n  key_env:"))
    with pytest.raises(ConfigError, match="predlog.key must not be"):
        load_serving_config(leaky)


def test_keys_from_environment_are_hashes_and_bad_ones_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hash_key("secret-token")
    monkeypatch.setenv("WW_SERVING_AUTH__KEYS", f"[{{name: crm, sha256: {digest}}}]")
    cfg = load_serving_config(configs_dir() / "serving.production.yaml")
    assert cfg.auth.keys[0].sha256 == digest and not cfg.auth.keys[0].admin
    monkeypatch.setenv("WW_SERVING_AUTH__KEYS", "[{name: crm, sha256: secret-token}]")
    with pytest.raises(ConfigError, match=r"auth.keys.0.sha256"):
        load_serving_config(configs_dir() / "serving.production.yaml")
    monkeypatch.setenv("WW_SERVING_MAX_BATCH", "0")
    with pytest.raises(ConfigError, match="max_batch"):
        load_serving_config(configs_dir() / "serving.yaml")
