"""The service's one error body and its OpenAPI document, made exact.

BentoML's generated document declares every error as ``{error, detail: string}`` while a
validation error sends ``detail`` as a list, and it says OpenAPI 3.0 while pydantic writes
JSON Schema 2020-12 (``anyOf [.., {type: null}]``, a numeric ``exclusiveMinimum``), which 3.0
reads differently: a client generated from it, or a fuzzer, is told lies. This module gives
every route the same :class:`ErrorBody` for every status the service sends, declares
OpenAPI 3.1 (whose schemas *are* JSON Schema 2020-12, so pydantic's output is read as meant)
and declares the probes' real answers. The document is built once per worker from BentoML's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

REF = "#/components/schemas/{model}"


class Issue(BaseModel):
    """One problem with a request body (pydantic's error, without the input it echoed)."""

    type: str = Field(description="pydantic's error type, e.g. extra_forbidden, less_than")
    loc: list[str | int] = Field(description="Where in the body: keys and list positions.")
    msg: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the service."""

    error: str = Field(description="What is wrong, naming the field(s) and any limit.")
    field: str | None = Field(None, description="The (first) field at fault, if one is.")
    detail: list[Issue] | None = Field(None, description="Each validation problem.")


class StoreStatus(BaseModel):
    loaded: bool
    dataset: str = Field(description="The dataset's name (never a path).")
    customers: int
    error: str | None


class ModelStatus(BaseModel):
    registered_name: str
    alias: str
    loaded: bool
    version: str | None
    loaded_at: str | None
    required: bool
    error: str | None


class Readiness(BaseModel):
    """``/readyz`` (and ``/admin/status``)."""

    ready: bool
    online_store: StoreStatus
    models: dict[str, ModelStatus]


# what each status means on a JSON route (the descriptions of the document)
ERRORS: dict[int, str] = {
    400: "The body is not a JSON object.",
    401: "Missing or invalid API key.",
    403: "The route needs an admin key.",
    404: "An unknown customer or event the request is about.",
    413: "The body or a batch is over a configured limit (named in `error`).",
    415: "The body is not sent as application/json.",
    422: "A field is wrong (type, range, unknown field, missing feature): `field` names it.",
    500: "A server fault (never for any input: a bug).",
    503: "The service is starting, or the route's model or store is not loaded.",
}


def field_of(loc: Sequence[Any]) -> str:
    """``["customers", 0, "customer_id"]`` → ``customers[0].customer_id`` (``body``: none)."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


# errors about the body as a whole: it is not JSON, or not an object
NOT_AN_OBJECT = frozenset({"json_invalid", "json_type", "model_type", "model_attributes_type"})


def validation_answer(errors: Iterable[Mapping[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Status and :class:`ErrorBody` of a body that failed its input model.

    400 when the body is not a JSON object; 422 when it is and a field is wrong (a wrong
    type, a value out of range, an unknown or missing field). Only pydantic's type, location
    and message are kept: never the input, which may hold customer ids.
    """
    issues: list[dict[str, Any]] = []
    status = 422
    for err in errors:
        loc = list(err.get("loc") or [])
        kind = str(err.get("type", "invalid"))
        if kind in NOT_AN_OBJECT and not loc:
            status = 400
        if kind == "json_invalid":
            loc, status = [], 400
        issues.append({"type": kind, "loc": loc, "msg": str(err.get("msg", "invalid"))})
    if not issues:
        issues.append({"type": "invalid", "loc": [], "msg": "invalid request body"})
    parts = [f"{field_of(i['loc'])}: {i['msg']}" for i in issues]
    return status, {
        "error": "; ".join(parts),
        "field": field_of(issues[0]["loc"]),
        "detail": issues,
    }


def _schema_of(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """Put ``model`` (and the models it uses) in ``schemas``; its ``$ref``."""
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _json(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _is_public(path: str, public: Sequence[str]) -> bool:
    return any(path == p or (p.endswith("/") and p != "/" and path.startswith(p)) for p in public)


def exact_openapi(
    generated: Mapping[str, Any],
    public: Sequence[str],
    bodies: Mapping[str, tuple[type[BaseModel], type[BaseModel]]] | None = None,
) -> dict[str, Any]:
    """BentoML's document with the responses the service really sends (module docstring).

    ``public`` are the paths that need no API key (the others declare bearer auth and 401);
    ``bodies`` the request and response models of a route, declared as pydantic writes them
    (BentoML's copy drops ``null`` from some nullable fields, e.g. ``event_id``).
    """
    spec = copy.deepcopy(dict(generated))
    spec["openapi"] = "3.1.0"
    comps = spec.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(name, None)
    error = _schema_of(ErrorBody, schemas)
    ready = _schema_of(Readiness, schemas)
    comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            declared = {str(k): v for k, v in op.get("responses", {}).items()}
            ok = declared.get("200", {"description": "OK"})
            responses: dict[str, Any]
            if method == "post" and path in (bodies or {}):
                request, response = (bodies or {})[path]
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_of(request, schemas)}},
                }
                ok = _json("OK", _schema_of(response, schemas))
            if method == "post":
                codes = [c for c in ERRORS if c != 403 or path.startswith("/admin/")]
                responses = {"200": ok, **{str(c): _json(ERRORS[c], error) for c in codes}}
            elif path == "/readyz":
                responses = {
                    "200": _json("Ready: every required model and the store are loaded.", ready),
                    "503": _json(
                        "Not ready (what is missing), or the worker is starting (an error).",
                        {"anyOf": [ready, error]},
                    ),
                }
            elif path == "/metrics":
                responses = {"200": _text("Prometheus text exposition.")}
            else:
                responses = {"200": _text("The process is alive.")}
            if path not in ("/healthz", "/livez", "/readyz"):
                responses.setdefault("503", _json(ERRORS[503], error))
            if not _is_public(path, public):
                responses.setdefault("401", _json(ERRORS[401], error))
                op["security"] = [{"bearer": []}]
            op["responses"] = dict(sorted(responses.items()))
    return spec
