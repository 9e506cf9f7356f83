"""FeatureServices as declarations: a name and the feature groups (views) it reads.

The features layer knows how to turn feature tables into Feast views and how to turn a
:class:`ServiceDecl` into a Feast ``FeatureService``; *which* services exist is declared by
the model kinds that read them (``training.kinds``), one declaration per service, and passed
down to :func:`features.store.definitions` / :func:`features.store.apply`. The features layer
itself never lists the models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

import pandas as pd

from wattwise.errors import ConfigError

# (dataset folder, only labels observed by this date) -> entity rows with their labels
LabelBuilder = Callable[[Path, date | None], pd.DataFrame]


@dataclass(frozen=True)
class ServiceDecl:
    """A FeatureService: its name (``churn_v1``) and the groups it reads, in order.

    A group the dataset does not have (a source without bills has no ``billing``) is left out
    of the service in that dataset's registry, and said so in the log.
    """

    name: str
    groups: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name or not self.groups:
            raise ConfigError(f"FeatureService {self.name!r} needs a name and at least one group")
        if len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"FeatureService {self.name!r} names a group twice: {self.groups}")


def unique_services(services: Iterable[ServiceDecl]) -> list[ServiceDecl]:
    """The services once each; two different declarations under one name are an error."""
    out: dict[str, ServiceDecl] = {}
    for s in services:
        seen = out.get(s.name)
        if seen is not None and seen != s:
            raise ConfigError(
                f"FeatureService {s.name!r} is declared twice with different groups: "
                f"{seen.groups} and {s.groups}"
            )
        out[s.name] = s
    return list(out.values())


class FeatureCatalog(Protocol):
    """What the features CLI needs to know about the models, given to it by the app shell
    (the kinds registry lives in a layer above features)."""

    def feature_services(self) -> list[ServiceDecl]:
        """Every FeatureService some model kind reads."""
        ...

    def label_source(self, kind: str) -> tuple[LabelBuilder, str]:
        """The labels builder of a kind and the name of the FeatureService it reads."""
        ...
