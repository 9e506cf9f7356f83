"""The registry of model kinds: one line per kind.

Each entry is ``"module:attribute"`` of a :class:`training.kinds.base.Kind`. Kinds kept
outside this repository are added with the settings' ``kinds`` list (the same form; e.g.
``WATTWISE_KINDS='["mypkg.forecast:KIND"]'``). Every stage reads kinds from here: training,
registry promotion, the scoring service's routes, batch scoring and monitoring.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from features.services import LabelBuilder, ServiceDecl, unique_services
from training.kinds.base import Kind, Route
from wattwise.errors import ConfigError

if TYPE_CHECKING:
    from wattwise.settings import Settings

__all__ = ["BUILTIN", "Kind", "KindCatalog", "Route", "feature_services", "get_kind", "registry"]

BUILTIN: tuple[str, ...] = (
    "training.kinds.churn:KIND",
    "training.kinds.propensity:KIND",
    "training.kinds.disaggregation:KIND",
    "training.kinds.dr_response:KIND",
)


@cache
def _load(ref: str) -> Kind:
    module, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr or "KIND")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"model kind {ref!r} cannot be loaded: {exc}") from exc
    if not isinstance(obj, Kind):
        raise ConfigError(f"model kind {ref!r} is a {type(obj).__name__}, not a Kind")
    return obj


def registry(settings: Settings | None = None) -> dict[str, Kind]:
    """Every kind by name: the built-in ones, then the settings' extra ones."""
    refs = [*BUILTIN, *(settings.kinds if settings is not None else ())]
    out: dict[str, Kind] = {}
    for ref in refs:
        kind = _load(ref)
        if kind.name in out and out[kind.name] is not kind:
            raise ConfigError(f"two model kinds are named {kind.name!r} ({ref})")
        out[kind.name] = kind
    return out


def get_kind(name: str, settings: Settings | None = None) -> Kind:
    """The kind called ``name``; extra kinds come from ``settings`` (default: the project's
    settings, read only when ``name`` is not a built-in kind)."""
    kinds = registry()
    if name in kinds:
        return kinds[name]
    if settings is None:
        from wattwise.settings import load_settings

        settings = load_settings()
    kinds = registry(settings)
    if name not in kinds:
        raise ConfigError(f"unknown model kind {name!r} (known: {', '.join(sorted(kinds))})")
    return kinds[name]


def feature_services(settings: Settings | None = None) -> list[ServiceDecl]:
    """Every FeatureService a kind reads (once each)."""
    return unique_services(
        k.feature_service for k in registry(settings).values() if k.feature_service is not None
    )


class KindCatalog:
    """The kinds as the features CLI sees them (:class:`features.services.FeatureCatalog`)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    def feature_services(self) -> list[ServiceDecl]:
        return feature_services(self.settings)

    def label_source(self, kind: str) -> tuple[LabelBuilder, str]:
        k = get_kind(kind, self.settings)
        if k.labels is None or k.feature_service is None:
            raise ConfigError(
                f"model kind {kind!r} has no labels table joined with a FeatureService"
            )
        return k.labels, k.feature_service.name
