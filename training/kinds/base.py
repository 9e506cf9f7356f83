"""A model kind: everything the platform needs to train, promote, serve, batch score and
monitor one kind of model, declared once.

Training (``training.pipeline``), the registry (``training.registry``), the scoring service
(``serving``), batch scoring (``serving.batch``) and monitoring read a :class:`Kind`; none
keeps its own list of kinds. A new kind is one module that builds a :class:`Kind`, one YAML
config under ``configs/models/`` and one line in :data:`training.kinds.BUILTIN` (or, for a
kind kept outside this repository, an entry in the settings' ``kinds`` list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel

from features.services import LabelBuilder, ServiceDecl

if TYPE_CHECKING:
    from training.config import ModelConfig

# How the scoring service loads and calls a registered version of a kind:
# "binary" (training.pyfunc.BinaryModel: probability, decision, reasons on a fast path),
# "propensity" (training.propensity.PropensityPyfunc), "pyfunc" (any MLflow pyfunc, called
# through its signature's input columns)
Adapter = Literal["binary", "propensity", "pyfunc"]
# Model inputs from the rows the platform assembles (keys, FeatureService values, request
# context): the kind's derived features, one function for training, batch and serving
Inputs = Callable[[pd.DataFrame], pd.DataFrame]


def no_derived_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The FeatureService values are the model's inputs as they are."""
    return frame


@dataclass(frozen=True)
class Route:
    """One HTTP route of the scoring service.

    ``handler`` names the :class:`serving.core.ScoringCore` method that answers it (``score``
    is the generic one: features of the customers from the online store through the kind's
    ``inputs``, then the model); ``request`` and ``response`` are the bodies, and make the
    OpenAPI page. ``threaded``: always run off the event loop (the handler reads data of a
    size the request does not show).
    """

    path: str
    handler: str
    request: type[BaseModel]
    response: type[BaseModel]
    summary: str
    threaded: bool = False


@dataclass(frozen=True, eq=False)
class Kind:
    """A model kind (see the module docstring)."""

    name: str  # the registered model's default name, the route prefix, `wattwise train NAME`
    summary: str
    config: type[ModelConfig]  # validates configs/models/*.yaml files with `kind: NAME`
    # a fresh training spec per run: a training.spec.ModelSpec (each spec narrows the config
    # and prepared-data types it takes, so the factory's type is not the protocol's)
    spec: Callable[[], Any]
    feature_service: ServiceDecl | None = None  # the FeatureService it reads, declared here
    labels: LabelBuilder | None = None  # entity rows with labels (tabular kinds)
    inputs: Inputs = no_derived_features
    # the registered pyfunc's output columns and their types, as served and batch scored
    outputs: Mapping[str, type] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    adapter: Adapter = "pyfunc"
    batch: bool = False  # `wattwise score NAME` scores every customer from the offline store
    required: bool = False  # the service is ready only with this kind's model loaded
    monitored: bool = False  # `wattwise drift watch` reports on it by default
    marketing: bool = False  # scores only customers whose record gives marketing consent
    # after a training run: write what the new version predicts back to the feature store
    # (settings, config, dataset folder, registered version) -> a line for the user
    publish: Callable[[Any, Any, Any, str], str] | None = None

    @property
    def service_name(self) -> str | None:
        return self.feature_service.name if self.feature_service else None
