"""Request and response bodies of the model kinds' HTTP routes (they make the OpenAPI page).

Types are strict where a wrong type would silently change a score: ids are strings, numbers
must be finite (NaN and infinity are refused with the field named), unknown fields are
refused (a typo is not ignored). Limits that depend on the serving config (the batch size)
are checked by the service. :func:`score_schemas` builds the bodies of the generic
``/<kind>/score`` route from a kind's output columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictBool,
    create_model,
)

from features.schema import table

# an id as the customers table writes it, matched exactly (case and all): printable ASCII
# without spaces, so "C0000000 " is refused, not taken for another (unknown) customer. Fits
# every imported form: C0000000, PowerCo's hex, LCL's MAC000002, gb:RetailCustomer/3
CUSTOMER_ID = r"^[!-~]+$"
CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=CUSTOMER_ID,
        description="As the customers table writes it: printable ASCII, no spaces.",
    ),
]
FeatureValue = StrictBool | FiniteFloat | str | None
Ids = Annotated[
    list[CustomerId] | None, Field(description="Customer ids (features from the online store).")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerFeatures(_In):
    """A customer with features the caller computed (all of the model's FeatureService).

    No consent field: marketing consent is read from the customers table for every
    propensity score and a request cannot set it (``consent_marketing`` here is a 422).
    """

    customer_id: CustomerId
    features: dict[str, FeatureValue]


Items = Annotated[
    list[CustomerFeatures] | None,
    Field(description="Customers with caller-computed features (instead of customer_ids)."),
]


class ModelInfo(BaseModel):
    name: str
    version: str


# ---- churn -----------------------------------------------------------------------------


class ChurnRequest(_In):
    customer_ids: Ids = None
    customers: Items = None
    reasons: StrictBool = True
    reason_method: Literal["path", "shap"] | None = Field(
        None,
        description="path (decision-path contributions) or shap (TreeSHAP, slower); "
        "default from the serving config",
    )


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


# ---- propensity --------------------------------------------------------------------------


class PropensityRequest(_In):
    customer_ids: Ids = None
    customers: Items = None
    programs: list[str] | None = Field(None, description="Programs to score (default: all).")


class ProgramScore(BaseModel):
    p_no_offer: float = Field(
        description="Calibrated probability of enrolling within 90 days without an offer."
    )
    p_offer: float = Field(
        description="The same calibrated model's probability of enrolling with an offer."
    )
    uplift: float = Field(
        description="p_offer - p_no_offer: what an offer adds, by the same calibrated model."
    )
    t_learner_uplift: float | None = Field(
        None,
        description="The T-learner's estimate (two uncalibrated boosters, offered vs not); "
        "null where an arm had too few enrolments to fit.",
    )
    offer: bool = Field(
        description="Whether ranking by uplift may offer this program: its uplift passed "
        "the model's test gate."
    )
    offer_reason: str | None = Field(
        None, description="Why the program is not offered by ranking (null when it is)."
    )


class PropensityResult(BaseModel):
    customer_id: str
    scores: dict[str, ProgramScore] | None = None
    reason: str | None = Field(None, description="Why no marketing score was given.")
    error: str | None = None


class PropensityResponse(BaseModel):
    request_id: str
    model: ModelInfo
    results: list[PropensityResult]


# ---- disaggregation ----------------------------------------------------------------------


# Times are instants: with a zone, any zone; without one, UTC. Their range, the range of a
# reading's kWh and the longest period (the serving config's breakdown_max_days) are checked
# by the service, which answers a value out of range with a 422 naming the field (the
# OpenAPI page shows the ranges); a wrong type is a 400 like everywhere else.
_KWH = table("interval_reads").column("kwh")
_TIME = "An instant: ISO 8601 with a zone (2024-07-01T00:00:00-08:00) or without (UTC)."


class Reading(_In):
    ts: datetime = Field(description=f"Start of the reading's interval. {_TIME}")
    kwh: FiniteFloat = Field(
        description="Energy imported in the interval (kWh).",
        json_schema_extra={"minimum": _KWH.min, "maximum": _KWH.max},
    )


class BreakdownRequest(_In):
    customer_id: CustomerId | None = Field(
        None, description="A customer of the service's dataset (with start and end)."
    )
    start: datetime | None = Field(
        None, description=f"First instant of the period (reads with start <= ts). {_TIME}"
    )
    end: datetime | None = Field(
        None, description=f"End of the period, excluded (ts < end). {_TIME}"
    )
    readings: list[Reading] | None = Field(
        None, description="Readings to break down instead of a customer's period."
    )


class ApplianceShare(BaseModel):
    appliance: str = Field(description='An appliance of the model, or "other" (the rest).')
    kwh: float
    share: float = Field(description="Of total_kwh; the shares of a response sum to 1.")


class BreakdownResponse(BaseModel):
    request_id: str
    model: ModelInfo
    customer_id: str | None
    start: datetime | None = Field(description="The period's first instant (UTC).")
    end: datetime | None = Field(description="The period's end, excluded (UTC).")
    total_kwh: float = Field(
        description="Metered kWh in the period (gaps interpolated): the appliances plus other."
    )
    n_readings: int = Field(0, description="Readings in the period.")
    appliances: list[ApplianceShare]


# ---- demand response ---------------------------------------------------------------------


EVENT_YEARS = (1970, 2200)  # inside pandas' datetime range (1677-2262), and sensible


def _event_year(v: datetime) -> datetime:
    """An event time the event context can compute on (else a 422, not a 500 in pandas)."""
    lo, hi = EVENT_YEARS
    if not lo <= v.year < hi:
        raise ValueError(f"must be in the years {lo} to {hi - 1}")
    return v


EventTime = Annotated[AwareDatetime, AfterValidator(_event_year)]


class EventSpec(_In):
    """An event given inline (one not yet in the events table)."""

    start: EventTime
    end: EventTime
    kind: str = "dr"
    region: str | None = None
    notified_at: EventTime | None = None
    incentive_per_kwh: FiniteFloat | None = Field(None, ge=0)
    price_per_kwh: FiniteFloat | None = Field(None, ge=0)
    temperature_c: FiniteFloat | None = Field(
        None,
        ge=-60,
        le=60,
        description="Forecast mean temperature over the event hours (°C); needed when the "
        "dataset has no weather for them.",
    )


class DrPredictRequest(_In):
    customer_ids: Annotated[list[CustomerId], Field(description="Customer ids.")]
    event_id: str | None = None
    event: EventSpec | None = None


class DrResult(BaseModel):
    customer_id: str
    expected_kw_reduction: float | None = None
    error: str | None = None


class DrPredictResponse(BaseModel):
    request_id: str
    model: ModelInfo
    event_id: str | None
    results: list[DrResult]


class DrTargetRequest(_In):
    target_kw: Annotated[FiniteFloat, Field(gt=0)]
    event_id: str | None = None
    event: EventSpec | None = None
    customer_ids: Ids = None
    confidence: float | None = Field(
        None,
        gt=0.5,
        lt=1,
        description="Confidence that the selection reaches target_kw (default: "
        "configs/dr.yaml planning.confidence, as `wattwise dr plan`).",
    )


class DrTargetRow(BaseModel):
    rank: int
    customer_id: str
    expected_kw_reduction: float
    cumulative_kw: float  # expected kW of this customer and every one ranked before
    sd_kw: float | None = None
    cumulative_lower_kw: float | None = None  # the lower bound at the confidence, so far


class DrTargetResponse(BaseModel):
    request_id: str
    model: ModelInfo
    event_id: str | None
    target_kw: float
    confidence: float | None = None
    reached: bool  # the lower bound of the selection reaches target_kw
    selected_kw: float  # expected kW of the selection
    lower_kw: float | None = None  # its lower bound at the confidence
    candidates: int
    customers: list[DrTargetRow]


# ---- the generic /<kind>/score route -----------------------------------------------------


class ScoreRequest(_In):
    customer_ids: Ids = None
    customers: Items = None


def score_schemas(
    kind: str, outputs: Mapping[str, type]
) -> tuple[type[BaseModel], type[BaseModel]]:
    """Request and response bodies of ``/<kind>/score`` for a pyfunc with ``outputs``."""
    stem = "".join(p.capitalize() for p in kind.split("_"))
    fields: dict[str, Any] = {"customer_id": (str, ...)}
    for name, typ in outputs.items():
        fields[name] = (typ | None, None)
    fields["error"] = (str | None, None)
    result = create_model(f"{stem}Result", **fields)
    response = create_model(
        f"{stem}Response",
        request_id=(str, ...),
        model=(ModelInfo, ...),
        results=(list[result], ...),  # type: ignore[valid-type]
    )
    request = create_model(f"{stem}Request", __base__=ScoreRequest)
    return request, response
