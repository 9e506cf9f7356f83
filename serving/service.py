"""The BentoML service (1.4 class API): HTTP wiring only; the logic is :mod:`serving.core`.

The routes come from the registry of model kinds (training.kinds): every route of every
served kind becomes an API of the service class, with the route's request and response
bodies as its input and output specs (they make the OpenAPI page). The class is built the
first time ``serving.service.Wattwise`` is read (``bentoml serve serving.service:Wattwise``,
``wattwise serve start``), from the configs in the environment: ``$WW_SERVING_CONFIG``
(else ``configs/serving.yaml``) and the project settings (``$WATTWISE_SETTINGS`` and
``WATTWISE_*``, whose ``kinds`` may add kinds). Importing this module does nothing.

Scoring one customer takes well under a millisecond, less than handing it to a thread, so
small batches run on the event loop; batches over ``inline_batch`` items, and routes marked
``threaded`` (they read data of a size the request does not show), go to a worker thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from serving.http import ServingMiddleware
from serving.models import RequestError

if TYPE_CHECKING:
    from serving.config import ServingConfig
    from training.kinds import Kind, Route
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
HOLDER: dict[str, Any] = {}  # the worker's ScoringCore, for the middleware
PROBES = ("/healthz", "/livez", "/readyz", "/metrics")


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "field": exc.field or None}, status_code=exc.status)


def api_name(route: Route) -> str:
    """``/dr/predict`` → ``dr_predict`` (the API's name and the class attribute)."""
    return route.path.strip("/").replace("/", "_").replace("-", "_")


def _items(fields: dict[str, Any]) -> int:
    """How many items a request carries (its longest list field)."""
    return max((len(v) for v in fields.values() if isinstance(v, list)), default=0)


def build_service(settings: Settings, cfg: ServingConfig, kinds: dict[str, Kind]) -> Any:
    """The BentoML service class with one API per route of every served kind."""
    import anyio
    import bentoml

    from serving.config import served_kinds
    from serving.connection import install

    install(cfg.limits)  # header, body and keep-alive deadlines on every connection
    served = served_kinds(cfg, kinds)

    class Wattwise:
        """Scores every served model kind (see the OpenAPI page for the routes)."""

        def __init__(self) -> None:
            from serving import logsafe
            from serving.core import ScoringCore, freeze_heap
            from serving.metrics import serving_metrics

            logsafe.install()  # no request data (customer ids) in this worker's log
            self.core = ScoringCore(settings, cfg, serving_metrics(), kinds)
            self.core.start(background=True)
            freeze_heap()  # this worker's start-up objects: no 350 ms full collections later
            HOLDER["service"] = self
            HOLDER["core"] = self.core

        @bentoml.on_shutdown
        def shutdown(self) -> None:
            self.core.stop()

        async def _call(self, route: Route, kind: Kind, fields: dict[str, Any]) -> Any:
            fn = getattr(self.core, route.handler)
            try:
                if not route.threaded and _items(fields) <= self.core.cfg.inline_batch:
                    return fn(kind, **fields)
                return await anyio.to_thread.run_sync(lambda: fn(kind, **fields))
            except RequestError as exc:
                return _error(exc)

        @bentoml.api(route="/admin/reload")
        async def admin_reload(self) -> dict[str, Any]:
            """Check every model alias now and load what moved (admin key)."""
            moves = await anyio.to_thread.run_sync(self.core.reload)
            return {"reloaded": moves, "status": self.core.readiness()[1]}

        @bentoml.api(route="/admin/status")
        async def admin_status(self) -> dict[str, Any]:
            """Models, versions and lookups as /readyz reports them."""
            return self.core.readiness()[1]

    routes: list[str] = []
    for s in served.values():
        for route in s.kind.routes:
            name = api_name(route)

            def make(route: Route = route, kind: Kind = s.kind) -> Any:
                async def api(self: Any, **fields: Any) -> Any:
                    return await self._call(route, kind, fields)

                api.__name__ = api.__qualname__ = api_name(route)
                api.__doc__ = route.summary
                return api

            setattr(
                Wattwise,
                name,
                bentoml.api(
                    make(),
                    route=route.path,
                    name=name,
                    input_spec=route.request,
                    output_spec=route.response,
                ),
            )
            routes.append(route.path)
    service = bentoml.service(
        name="wattwise",
        workers=1,
        traffic={"timeout": 60},
        logging={"access": {"enabled": False}},
        # BentoML's metrics middleware and an OpenTelemetry span per request cost ~1.5 ms of
        # CPU per request, more than scoring one customer: /metrics is ours
        # (serving.metrics), and spans are skipped on the scoring and probe routes unless a
        # deployment's BentoML config sets tracing.excluded_urls otherwise.
        metrics={"enabled": False},
        tracing={"excluded_urls": [*routes, *PROBES]},
    )(Wattwise)
    # the JSON scoring routes the middleware dispatches itself (serving.http.dispatch)
    direct = {
        api.route: api for api in service.apis.values() if not api.route.startswith("/admin/")
    }
    service.add_asgi_middleware(
        ServingMiddleware,
        holder=HOLDER,
        direct=direct,
        json_routes=[api.route for api in service.apis.values()],
        openapi=lambda: service.openapi_spec.asdict(),
        bodies={r.path: (r.request, r.response) for s in served.values() for r in s.kind.routes},
    )
    return service


def _service() -> Any:
    from serving.config import load_serving_config
    from training.kinds import registry
    from wattwise.settings import load_settings

    settings = load_settings()
    return build_service(settings, load_serving_config(), registry(settings))


def __getattr__(name: str) -> Any:
    """``Wattwise``, built on first read (see the module docstring)."""
    if name == "Wattwise":
        svc = _service()
        globals()["Wattwise"] = svc
        return svc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
