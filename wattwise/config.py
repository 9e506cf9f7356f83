"""YAML configs validated once by pydantic, with ``WATTWISE_*`` environment overrides.

A config is data: each file under ``configs/`` maps onto one pydantic model and is validated
here, once; code downstream receives the validated object and never re-reads YAML.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from wattwise.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, raising :class:`ConfigError` that names the file on any problem."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic error into one line naming the field(s) and the problem."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return f"{source}: invalid config: " + "; ".join(parts)


RESERVED = {"HOME", "SETTINGS", "CONFIGS"}  # WATTWISE_HOME etc. locate files, not keys
# Prefixes of configs other than the settings that share the WATTWISE_ namespace: the settings
# loader leaves their variables to them (WATTWISE_MONITORING_ALERTS__WEBHOOK_URL is the
# monitoring config's); BENCH_ holds benchmark inputs. Their loaders read these constants.
FEATURES_ENV = "WATTWISE_FEATURES"
MONITORING_ENV = "WATTWISE_MONITORING"
OTHER_NAMESPACES = (FEATURES_ENV, MONITORING_ENV, "WATTWISE_BENCH")
# variables that locate files for tools run directly (the Feast repo's definitions.py)
LOCATORS = {"WATTWISE_FEATURES_DIR"}


def env_overrides(prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Collect ``PREFIX_A__B=value`` variables into ``{"a": {"b": value}}``.

    Values are parsed as YAML scalars so ``WATTWISE_SEED=7`` arrives as an int.
    ``PREFIX_HOME``, ``PREFIX_SETTINGS``, ``PREFIX_CONFIGS`` are not overrides, nor are the
    variables of another config under a longer prefix (:data:`OTHER_NAMESPACES`).
    """
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    plen = len(prefix) + 1
    for key, raw in env.items():
        name = key[plen:]
        if (
            not key.startswith(prefix + "_")
            or not name
            or name in RESERVED
            or key in LOCATORS
            or any(key.startswith(o + "_") for o in OTHER_NAMESPACES if o != prefix)
        ):
            continue
        path = [p.lower() for p in key[plen:].split("__") if p]
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return out


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively by ``over`` (neither is modified). An empty
    mapping in ``over`` replaces the key (``promotion: {floor: {}}`` means no floor)."""
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and v and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """Validate ``data`` as ``model``; a failure becomes a one-line :class:`ConfigError`."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def load_config(
    model: type[M],
    path: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    env_prefix: str | None = None,
) -> M:
    """Load ``path`` as ``model``: file, then environment (``env_prefix``), then ``overrides``."""
    data = read_yaml(path)
    if env_prefix:
        data = deep_merge(data, env_overrides(env_prefix))
    if overrides:
        data = deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    return validate(model, data, str(path))
