"""The propensity kind: who enrols in which program within 90 days, and whom an offer moves.

Labels per program from enrolments and offers; the ``propensity_v1`` FeatureService; one
calibrated response model and a T-learner per program (training.propensity); served at
``POST /propensity/score`` to customers whose record gives marketing consent, batch scored,
monitored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from features import labels
from features.services import ServiceDecl
from training.config import GateConfig, TabularConfig, floor_rules
from training.kinds.base import Kind, Route
from training.kinds.churn import CUSTOMER_GROUPS
from training.kinds.schemas import PropensityRequest, PropensityResponse

if TYPE_CHECKING:
    from training.propensity import PropensitySpec


class PropensityConfig(TabularConfig):
    """Propensity: the programs modelled, and the test gate each program's uplift must pass
    to be offered by ranking (metrics of :func:`program_metrics`; same rules as a floor)."""

    programs: list[str] = Field(min_length=1)
    program_floor: dict[str, str | float] = {"qini_observed": "> 0", "roc_auc": ">= 0.55"}

    @field_validator("program_floor")
    @classmethod
    def _rules(cls, v: dict[str, str | float]) -> dict[str, str | float]:
        return floor_rules(v)

    def offer_verdict(self, metrics: dict[str, float]) -> tuple[bool, str | None]:
        """(offer by ranking?, why not) for one program's test metrics."""
        fails = GateConfig(floor=self.program_floor).floor_failures(metrics)
        return (not fails, ("; ".join(fails) + " on the test rows") if fails else None)


def _spec() -> PropensitySpec:
    from training.propensity import PropensitySpec

    return PropensitySpec()


KIND = Kind(
    name="propensity",
    summary="who enrols in which program, and whom an offer moves",
    config=PropensityConfig,
    spec=_spec,
    feature_service=ServiceDecl("propensity_v1", (*CUSTOMER_GROUPS, "premise")),
    labels=labels.propensity,
    routes=(
        Route(
            "/propensity/score",
            "propensity",
            PropensityRequest,
            PropensityResponse,
            "Per program: the calibrated probability of enrolling without and with an offer, "
            "uplift (their difference) and the T-learner's estimate, and whether ranking may "
            "offer the program. Customers without marketing consent get no score and a reason.",
        ),
    ),
    adapter="propensity",
    batch=True,
    required=True,
    monitored=True,
    marketing=True,
)
