"""The DR-response kind: the expected kW reduction of an enrolled customer for an event.

Training rows are the participants of settled events (``training.dr.data.event_rows``:
``dr_response_v1`` point-in-time at the notice, the event's context, derived ``x_*``
features, the settled reduction); one LightGBM regressor (training.dr.spec); served at
``POST /dr/predict`` and ``/dr/target`` with the same input builder as training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from features import labels
from features.services import ServiceDecl
from training.config import GateConfig, ModelConfig, _Cfg
from training.dr.data import SERVICE, derived_features
from training.kinds.base import Kind, Route
from training.kinds.schemas import (
    DrPredictRequest,
    DrPredictResponse,
    DrTargetRequest,
    DrTargetResponse,
)

if TYPE_CHECKING:
    from training.dr.spec import DRResponseSpec


class RegressionMetric(_Cfg):
    name: Literal["rmse"] = "rmse"
    direction: Literal["minimize"] = "minimize"


class EventSplit(_Cfg):
    """By event start: the last ``test_share`` of events test, the ``valid_share`` before
    them validate (and early-stop)."""

    test_share: float = Field(0.25, gt=0, lt=0.6)
    valid_share: float = Field(0.15, gt=0, lt=0.6)


class DRResponseConfig(ModelConfig):
    """``configs/models/dr_response.yaml``."""

    label: str | None = "reduction_kw"
    split: EventSplit = EventSplit()
    metric: RegressionMetric = RegressionMetric()  # type: ignore[assignment]
    promotion: GateConfig = GateConfig(metric="rmse", higher_is_better=False)


def _spec() -> DRResponseSpec:
    from training.dr.spec import DRResponseSpec

    return DRResponseSpec()


KIND = Kind(
    name="dr_response",
    summary="expected kW reduction of a customer called for a demand-response event",
    config=DRResponseConfig,
    spec=_spec,
    feature_service=ServiceDecl(
        SERVICE, ("usage", "peer", "programs", "engagement", "dr_performance")
    ),
    labels=labels.dr_response,
    inputs=derived_features,
    outputs={"expected_kw": float, "sd_kw": float},
    routes=(
        Route(
            "/dr/predict",
            "dr_predict",
            DrPredictRequest,
            DrPredictResponse,
            "Expected kW reduction of each customer if called for the event (an event_id of "
            "the events table, or the event given inline).",
            threaded=True,
        ),
        Route(
            "/dr/target",
            "dr_target",
            DrTargetRequest,
            DrTargetResponse,
            "Customers ranked by expected reduction, taken until target_kw is reached. "
            "Candidates: customer_ids, else every customer of the event's region.",
            threaded=True,
        ),
    ),
)
