"""The churn kind: who leaves within 90 days of a monthly snapshot, and why (reason codes).

Labels from ``churn_labels``; the ``churn_v1`` FeatureService; a calibrated LightGBM with a
decision threshold (training.binary); served at ``POST /churn/score`` on the binary fast
path, batch scored from the offline store, monitored for drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features import labels
from features.services import ServiceDecl
from training.config import TabularConfig
from training.kinds.base import Kind, Route
from training.kinds.schemas import ChurnRequest, ChurnResponse

# the customer-keyed groups both customer models read (propensity_v1 shares them)
CUSTOMER_GROUPS = ("usage", "load_shape", "peer", "rate", "billing", "engagement", "programs")

if TYPE_CHECKING:
    from training.binary import BinarySpec


def _spec() -> BinarySpec:
    from training.binary import BinarySpec
    from training.oracle import churn_oracle_probability

    return BinarySpec(oracle=churn_oracle_probability)


KIND = Kind(
    name="churn",
    summary="who leaves within 90 days, and why",
    config=TabularConfig,
    spec=_spec,
    feature_service=ServiceDecl("churn_v1", (*CUSTOMER_GROUPS, "attributes")),
    labels=labels.churn,
    outputs={"probability": float, "decision": bool},
    routes=(
        Route(
            "/churn/score",
            "churn",
            ChurnRequest,
            ChurnResponse,
            "Churn probability, decision at the configured threshold and top reason codes. "
            "Give customer_ids (features from the online store) or customers with their own "
            "features; an unknown customer gets an error in its result, the rest score.",
        ),
    ),
    adapter="binary",
    batch=True,
    required=True,
    monitored=True,
)
