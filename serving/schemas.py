"""Request and response bodies of the scoring endpoints (they make the OpenAPI page).

Types are strict where a wrong type would silently change a score: ids are strings, numbers
must be finite (NaN and infinity are refused with the field named), lists may not be empty.
Limits that depend on the config (the batch size) are checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat, StrictBool

CustomerId = Annotated[str, Field(min_length=1, max_length=128)]
FeatureValue = StrictBool | FiniteFloat | str | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerFeatures(_In):
    """A customer with features the caller computed (all of the model's FeatureService)."""

    customer_id: CustomerId
    features: dict[str, FeatureValue]
    consent_marketing: StrictBool | None = Field(
        None,
        description="Propensity only: consent when the customer is not in the customers table.",
    )


class ModelInfo(BaseModel):
    name: str
    version: str


class ChurnResult(BaseModel):
    customer_id: str
    probability: float | None = None
    decision: bool | None = None
    reasons: list[str] = []
    error: str | None = None


class ChurnResponse(BaseModel):
    request_id: str
    model: ModelInfo
    threshold: float
    results: list[ChurnResult]


class ProgramScore(BaseModel):
    p_no_offer: float
    p_offer: float
    uplift: float


class PropensityResult(BaseModel):
    customer_id: str
    scores: dict[str, ProgramScore] | None = None
    reason: str | None = Field(None, description="Why no marketing score was given.")
    error: str | None = None


class PropensityResponse(BaseModel):
    request_id: str
    model: ModelInfo
    results: list[PropensityResult]


class Reading(_In):
    ts: AwareDatetime
    kwh: FiniteFloat = Field(ge=0)


class ApplianceShare(BaseModel):
    appliance: str
    kwh: float
    share: float


class BreakdownResponse(BaseModel):
    request_id: str
    model: ModelInfo
    customer_id: str | None
    start: datetime | None
    end: datetime | None
    total_kwh: float
    appliances: list[ApplianceShare]


class EventSpec(_In):
    """An event given inline (one not yet in the events table)."""

    start: AwareDatetime
    end: AwareDatetime
    kind: str = "dr"
    region: str | None = None
    notified_at: AwareDatetime | None = None
    incentive_per_kwh: FiniteFloat | None = Field(None, ge=0)
    price_per_kwh: FiniteFloat | None = Field(None, ge=0)


class DrResult(BaseModel):
    customer_id: str
    expected_kw_reduction: float | None = None
    error: str | None = None


class DrPredictResponse(BaseModel):
    request_id: str
    model: ModelInfo
    event_id: str | None
    results: list[DrResult]


class DrTargetRow(BaseModel):
    rank: int
    customer_id: str
    expected_kw_reduction: float
    cumulative_kw: float


class DrTargetResponse(BaseModel):
    request_id: str
    model: ModelInfo
    event_id: str | None
    target_kw: float
    reached: bool
    selected_kw: float
    candidates: int
    customers: list[DrTargetRow]
