"""The disaggregation kind: appliance loads from the aggregate meter alone.

Trained on the synthetic utility's sub-metered panel (unseen homes) or a REDD house
(training.disaggregation); the pyfunc takes a window of readings and gives a series per
appliance; served at ``POST /disaggregation/breakdown``; after training, the monthly
breakdown and detection flags of every customer go back to the feature store (the
``appliances`` group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features import labels
from features.services import ServiceDecl
from training.disaggregation.config import DisaggConfig
from training.kinds.base import Kind, Route
from training.kinds.schemas import BreakdownRequest, BreakdownResponse

if TYPE_CHECKING:
    from training.disaggregation.train import DisaggregationSpec


def _spec() -> DisaggregationSpec:
    from training.disaggregation.train import DisaggregationSpec

    return DisaggregationSpec()


def _publish(settings: Any, cfg: DisaggConfig, dataset_dir: Any, version: str) -> str:
    """The new version's monthly breakdown of every customer → features/appliances.parquet."""
    if cfg.data != "synthetic":
        return f"{cfg.data}: no customers to export appliance features for"
    from training.disaggregation import service

    return service.export_features(
        settings, dataset_dir, version=version, model=cfg.model_name, cfg=cfg
    )


KIND = Kind(
    name="disaggregation",
    summary="appliance loads from the aggregate meter",
    config=DisaggConfig,
    spec=_spec,
    feature_service=ServiceDecl("disaggregation_v1", ("windows", "appliances")),
    labels=labels.disaggregation,
    routes=(
        Route(
            "/disaggregation/breakdown",
            "breakdown",
            BreakdownRequest,
            BreakdownResponse,
            "kWh and share per appliance: a customer's period (start <= ts < end) or raw readings.",
            threaded=True,
        ),
    ),
    publish=_publish,
)
