"""The BentoML service (1.4 class API): HTTP wiring only; the logic is :mod:`serving.core`.

Start it with ``wattwise serve start`` (or ``bentoml serve serving.service:Wattwise``). The
configs come from the environment: ``$WW_SERVING_CONFIG`` (else ``configs/serving.yaml``) and
the project settings (``$WATTWISE_SETTINGS`` and ``WATTWISE_*``).

Endpoints are ``async``: scoring one customer takes well under a millisecond, less than
handing it to a thread, so small batches run on the event loop; batches over
``inline_batch`` items go to a worker thread.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
import bentoml
from pydantic import Field, FiniteFloat, StrictBool
from starlette.responses import JSONResponse

from serving import schemas
from serving.http import ServingMiddleware
from serving.models import RequestError

log = logging.getLogger(__name__)
HOLDER: dict[str, Any] = {}  # the worker's ScoringCore, for the middleware
TRACE_EXCLUDED = (
    "/churn/score",
    "/propensity/score",
    "/disaggregation/breakdown",
    "/dr/predict",
    "/dr/target",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
)

Ids = Annotated[list[schemas.CustomerId], Field(description="Customer ids (features from Feast).")]
Items = Annotated[
    list[schemas.CustomerFeatures], Field(description="Customers with caller-computed features.")
]


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "field": exc.field or None}, status_code=exc.status)


@bentoml.service(
    name="wattwise",
    workers=1,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
    # BentoML's metrics middleware and an OpenTelemetry span per request cost ~1.5 ms of CPU
    # per request, more than scoring one customer: /metrics is ours (serving.metrics), and
    # spans are skipped on the scoring and probe routes unless a deployment's BentoML config
    # sets tracing.excluded_urls otherwise.
    metrics={"enabled": False},
    tracing={"excluded_urls": list(TRACE_EXCLUDED)},
)
class Wattwise:
    """Scores churn, program propensity, appliance breakdowns and DR response."""

    def __init__(self) -> None:
        from serving.config import load_serving_config
        from serving.core import ScoringCore, freeze_heap
        from serving.metrics import serving_metrics
        from wattwise.settings import load_settings

        settings = load_settings()
        cfg = load_serving_config()
        self.core = ScoringCore(settings, cfg, serving_metrics())
        self.core.start(background=True)
        freeze_heap()  # this worker's start-up objects: no 350 ms full collections later
        HOLDER["service"] = self
        HOLDER["core"] = self.core

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.core.stop()

    async def _call(self, n: int, fn: Any, *args: Any) -> Any:
        try:
            if n <= self.core.cfg.inline_batch:
                return fn(*args)
            return await anyio.to_thread.run_sync(fn, *args)
        except RequestError as exc:
            return _error(exc)

    @bentoml.api(route="/churn/score")
    async def churn_score(
        self,
        customer_ids: Ids | None = None,
        customers: Items | None = None,
        reasons: StrictBool = True,
        reason_method: Literal["path", "shap"] | None = None,
    ) -> schemas.ChurnResponse:
        """Churn probability, decision at the configured threshold and top reason codes.

        Give ``customer_ids`` (features from the online store) or ``customers`` with their
        own features. An unknown customer gets an ``error`` in its result; the rest score.
        ``reason_method``: ``path`` (decision-path contributions) or ``shap`` (TreeSHAP,
        slower); default from the serving config.
        """
        n = len(customer_ids or customers or [])
        return await self._call(  # type: ignore[no-any-return]
            n, self.core.churn, customer_ids, customers, reasons, reason_method
        )

    @bentoml.api(route="/propensity/score")
    async def propensity_score(
        self,
        customer_ids: Ids | None = None,
        customers: Items | None = None,
        programs: list[str] | None = None,
    ) -> schemas.PropensityResponse:
        """Per program: enrolment probability without and with an offer, and the uplift.

        Customers without marketing consent get no score and a ``reason``.
        """
        n = len(customer_ids or customers or [])
        return await self._call(n, self.core.propensity, customer_ids, customers, programs)  # type: ignore[no-any-return]

    @bentoml.api(route="/disaggregation/breakdown")
    async def disaggregation_breakdown(
        self,
        customer_id: schemas.CustomerId | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        readings: list[schemas.Reading] | None = None,
    ) -> schemas.BreakdownResponse:
        """kWh and share per appliance: a customer's period (start ≤ ts < end) or raw readings."""
        n = len(readings or []) // 100
        return await self._call(n, self.core.breakdown, customer_id, start, end, readings)  # type: ignore[no-any-return]

    @bentoml.api(route="/dr/predict")
    async def dr_predict(
        self,
        customer_ids: Ids,
        event_id: str | None = None,
        event: schemas.EventSpec | None = None,
    ) -> schemas.DrPredictResponse:
        """Expected kW reduction of each customer if called for the event."""
        n = len(customer_ids)
        return await self._call(n, self.core.dr_predict, event_id, event, customer_ids)  # type: ignore[no-any-return]

    @bentoml.api(route="/dr/target")
    async def dr_target(
        self,
        target_kw: Annotated[FiniteFloat, Field(gt=0)],
        event_id: str | None = None,
        event: schemas.EventSpec | None = None,
        customer_ids: Ids | None = None,
    ) -> schemas.DrTargetResponse:
        """Customers ranked by expected reduction, taken until ``target_kw`` is reached.

        Candidates: ``customer_ids``, else every customer of the event's region.
        """
        return await self._call(  # type: ignore[no-any-return]
            self.core.cfg.inline_batch + 1,
            self.core.dr_target,
            event_id,
            event,
            target_kw,
            customer_ids,
        )

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self) -> dict[str, Any]:
        """Check every model alias now and load what moved (admin key)."""
        moves = await anyio.to_thread.run_sync(self.core.reload)
        return {"reloaded": moves, "status": self.core.readiness()[1]}

    @bentoml.api(route="/admin/status")
    async def admin_status(self) -> dict[str, Any]:
        """Models, versions and lookups as /readyz reports them."""
        return self.core.readiness()[1]


# the JSON scoring routes the middleware dispatches itself (serving.http.dispatch)
DIRECT = {
    api.route: api
    for api in Wattwise.apis.values()  # type: ignore[attr-defined]
    if not api.route.startswith("/admin/")
}
Wattwise.add_asgi_middleware(ServingMiddleware, holder=HOLDER, direct=DIRECT)  # type: ignore[attr-defined]
