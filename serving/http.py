"""HTTP concerns around the endpoints: API keys, limits, /readyz, one error body.

A plain ASGI middleware (no per-request Starlette objects: it sits on the hot path):

- ``Authorization: Bearer <key>``: the SHA-256 of the key must match a configured key;
  ``/admin/*`` needs an admin key. Public paths (health, OpenAPI page) need none.
- A POST to an API route must be JSON (another content type: 415) within
  ``limits.max_body_bytes`` (413 naming the limit, from ``content-length`` before a byte is
  read, else as soon as the body passes it), on BentoML's own path as on ours.
- ``/readyz`` answers JSON: which models and lookups are loaded (BentoML's own answers an
  empty body), without filesystem paths: it is public.
- ``/docs.json``: BentoML's OpenAPI document made exact (:mod:`serving.spec`).
- ``/metrics``: the Prometheus text (BentoML's metrics middleware is off, see
  :mod:`serving.metrics`); every response is counted by route and status.
- A body that fails validation answers :class:`serving.spec.ErrorBody` with 400 (not a JSON
  object) or 422 (a field is wrong), ``error`` naming the field
  (``customer_ids[2]: Input should be a valid string``), on either path.
- Direct dispatch of the JSON scoring routes (``direct`` below, on unless the serving config
  sets ``direct_dispatch: false``): the middleware validates the body with the same pydantic
  input model BentoML generated from the API's signature, awaits the same API function and
  writes its response model as BentoML's JSON serde does. It skips Starlette's routing, the
  per-request ``Request`` and BentoML's context/serde objects: ~1 ms of CPU per request, more
  than scoring one customer. ``X-Wattwise-Dispatch: bentoml`` sends a request the long way
  (tests compare the two).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from pydantic import BaseModel

from serving.config import AuthConfig, hash_key
from serving.spec import exact_openapi, validation_answer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
log = logging.getLogger(__name__)
UNEXPECTED = "An unexpected error has occurred, please check the server log."


def bentoml_validation(body: bytes) -> tuple[int, bytes] | None:
    """BentoML's validation-error body (``detail``: pydantic's list) as the service's own
    :class:`serving.spec.ErrorBody` and status (400 or 422); None for any other body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list):
        return None
    status, answer = validation_answer(d for d in data["detail"] if isinstance(d, dict))
    return status, json.dumps(answer).encode()


def media_type(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's ``content-type`` without parameters (lower case), None when absent."""
    for k, v in headers:
        if k == b"content-type":
            return v.decode("latin-1").split(";")[0].strip().lower()
    return None


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The declared body size (None when not declared: chunked, or no body)."""
    for k, v in headers:
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def too_large(limit: int, size: int | None = None) -> dict[str, Any]:
    """The 413 body naming the limit (``size`` when the request declared it)."""
    got = f"of {size} bytes " if size is not None else ""
    return {
        "error": f"request body {got}is over the limit of {limit} bytes (limits.max_body_bytes)",
        "field": "body",
    }


class ClientGoneError(Exception):
    """The connection closed before the whole body came (the client left, or its body's
    deadline passed: :mod:`serving.connection`): there is nobody to answer."""


async def read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole request body (ASGI may deliver it in several messages); None as soon as it
    passes ``limit`` bytes, before the rest is read. :class:`ClientGoneError` on a disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then what the client sends next."""
    sent = False

    async def inner() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return inner


async def _json(
    send: Send, status: int, payload: dict[str, Any], headers: list[Any] | None = None
) -> None:
    await _raw(send, status, json.dumps(payload).encode(), headers)


async def _raw(send: Send, status: int, body: bytes, headers: list[Any] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# routes counted by name in wattwise_http_requests besides the kinds' routes (the middleware's
# ``direct`` ones); anything else is "other": bounded labels
FIXED_ROUTES = frozenset({"/admin/reload", "/admin/status", "/healthz", "/livez"})


async def _metrics(send: Send) -> None:
    import anyio

    from serving.metrics import exposition

    body, ctype = await anyio.to_thread.run_sync(exposition)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", ctype.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def dispatch(
    api: Any, service: Any, scope: Scope, body: bytes, receive: Receive, send: Send
) -> None:
    """Serve one request of a BentoML JSON API as BentoML would, without its request objects.

    ``api`` is the ``bentoml.api`` method (its ``input_spec`` model and original ``func``),
    ``body`` the request body already read; errors answer as the BentoML path answers them
    after this middleware (:func:`serving.spec.validation_answer`, 500 generic).
    """
    from pydantic import ValidationError

    try:
        data = api.input_spec.model_validate_json(body or b"{}")
    except ValidationError as exc:
        status, answer = validation_answer(
            exc.errors(include_url=False, include_context=False, include_input=False)
        )
        await _json(send, status, answer)
        return
    try:
        out = await api.func(service, **{k: getattr(data, k) for k in type(data).model_fields})
    except Exception:  # the answer BentoML gives; the cause goes to the log
        log.exception("%s failed", scope.get("path"))
        await _json(send, 500, {"error": UNEXPECTED})
        return
    if callable(out) and not hasattr(out, "model_dump_json"):  # a Starlette response
        await out(scope, receive, send)
        return
    await _raw(send, 200, out.model_dump_json().encode())


class ServingMiddleware:
    """Auth, JSON readiness, request limits and clear errors (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        holder: MutableMapping[str, Any],
        direct: Mapping[str, Any] | None = None,
        json_routes: Iterable[str] = (),
        openapi: Callable[[], Mapping[str, Any]] | None = None,
        bodies: Mapping[str, tuple[type[BaseModel], type[BaseModel]]] | None = None,
    ) -> None:
        """``holder["core"]`` is the worker's ScoringCore once the service has started and
        ``holder["service"]`` the service instance; ``direct`` maps routes to the
        ``bentoml.api`` methods served by :func:`dispatch`; ``json_routes`` are every API's
        route (a POST there must be JSON within the body limit); ``openapi`` gives BentoML's
        generated document, served exact at ``/docs.json`` with ``bodies`` (each route's
        request and response models) as pydantic declares them (:mod:`serving.spec`)."""
        self.app = app
        self.holder = holder
        self.direct = dict(direct or {})
        self.routes = FIXED_ROUTES | frozenset(self.direct)
        self.json_routes = frozenset(json_routes) | frozenset(self.direct)
        self.openapi = openapi
        self.bodies = dict(bodies or {})
        self._spec: bytes | None = None
        self._auth: AuthConfig | None = None

    def _docs(self, auth: AuthConfig) -> bytes:
        """The exact OpenAPI document, built on first request."""
        if self._spec is None:
            assert self.openapi is not None
            self._spec = json.dumps(
                exact_openapi(self.openapi(), auth.public_paths, self.bodies)
            ).encode()
        return self._spec

    def _configure(self, auth: AuthConfig) -> None:
        self.enabled = auth.enabled
        self.keys = {k.sha256: k for k in auth.keys}
        self.public = [p for p in auth.public_paths if not p.endswith("/") or p == "/"]
        self.public_prefixes = [p for p in auth.public_paths if p.endswith("/") and p != "/"]
        self._auth = auth

    def _is_public(self, path: str) -> bool:
        return path in self.public or any(path.startswith(p) for p in self.public_prefixes)

    def _check(self, scope: Scope, path: str) -> tuple[int, str] | None:
        """None when allowed, else (status, message)."""
        if not self.enabled or self._is_public(path):
            return None
        token = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                v = value.decode("latin-1")
                if v[:7].lower() == "bearer ":
                    token = v[7:].strip()
                break
        if not token:
            return 401, "missing API key: send Authorization: Bearer <key>"
        digest = hash_key(token)
        key = None
        for h, k in self.keys.items():
            if hmac.compare_digest(h, digest):
                key = k
        if key is None:
            return 401, "invalid API key"
        if path.startswith("/admin/") and not key.admin:
            return 403, f"{path} needs an admin key; key {key.name!r} is not one"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        core = self.holder.get("core")
        if core is None:
            await _json(send, 503, {"error": "the service is starting"})
            return
        if self._auth is not core.cfg.auth:
            self._configure(core.cfg.auth)
        denied = self._check(scope, path)
        if denied is not None:
            status, message = denied
            hdrs = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await _json(send, status, {"error": message}, hdrs)
            return
        method = scope.get("method")
        if path == "/readyz":
            ready, detail = core.readiness(public=True)
            await _json(send, 200 if ready else 503, detail)
            return
        if path == "/metrics":
            await _metrics(send)
            return
        if path == "/docs.json" and method == "GET" and self.openapi is not None:
            await _raw(send, 200, self._docs(core.cfg.auth))
            return
        counter = core.metrics.http if core.metrics is not None else None
        route = path if path in self.routes else "other"
        held: dict[str, Any] = {}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                held["start"] = message  # BentoML's validation error: rewritten below
                held["body"] = b""
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                start = held.pop("start")
                status, body = bentoml_validation(held["body"]) or (400, held["body"])
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                message = {**start, "status": status, "headers": headers}
                if counter is not None:
                    core.metrics.child(counter, route, str(status)).inc()
                await send(message)
                await send({"type": "http.response.body", "body": body})
                return
            if message["type"] == "http.response.start" and counter is not None:
                core.metrics.child(counter, route, str(message["status"])).inc()
            await send(message)

        if method != "POST" or path not in self.json_routes:
            await self.app(scope, receive, send_wrapper)
            return
        headers = scope.get("headers", ())
        ctype = media_type(headers)
        if ctype is not None and ctype != "application/json":
            msg = f"content-type {ctype} is not supported: send the body as application/json"
            await _json(send_wrapper, 415, {"error": msg, "field": "content-type"})
            return
        limit = core.cfg.limits.max_body_bytes
        size = content_length(headers)
        if size is not None and size > limit:  # refused before a byte of it is read
            await _json(send_wrapper, 413, too_large(limit, size))
            return
        try:
            body = await read_limited(receive, limit)
        except ClientGoneError:
            return
        if body is None:
            await _json(send_wrapper, 413, too_large(limit))
            return
        api = self.direct.get(path) if core.cfg.direct_dispatch else None
        if api is not None and (b"x-wattwise-dispatch", b"bentoml") not in headers:
            await dispatch(api, self.holder["service"], scope, body, receive, send_wrapper)
        else:
            await self.app(scope, replay(body, receive), send_wrapper)
