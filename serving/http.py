"""HTTP concerns around the endpoints: API keys, /readyz, and one-line error messages.

A plain ASGI middleware (no per-request Starlette objects: it sits on the hot path):

- ``Authorization: Bearer <key>``: the SHA-256 of the key must match a configured key;
  ``/admin/*`` needs an admin key. Public paths (health, OpenAPI page) need none.
- ``/readyz`` answers JSON: which models and lookups are loaded (BentoML's own answers an
  empty body).
- ``/metrics``: the Prometheus text (BentoML's metrics middleware is off, see
  :mod:`serving.metrics`); every response is counted by route and status.
- A 400 from request validation gets an ``error`` that names the field
  (``customer_ids[2]: Input should be a valid string``) instead of a count of errors.
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
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from serving.config import AuthConfig, hash_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
log = logging.getLogger(__name__)
UNEXPECTED = "An unexpected error has occurred, please check the server log."


def loc_to_field(loc: list[Any] | tuple[Any, ...]) -> str:
    """``["customers", 0, "customer_id"]`` → ``customers[0].customer_id``."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


def validation_message(body: bytes) -> bytes | None:
    """Rewrite BentoML's validation-error body so ``error`` names the field(s)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list):
        return None
    parts = []
    for err in data["detail"]:
        if isinstance(err, dict):
            field = loc_to_field(err.get("loc") or [])
            msg = err.get("msg", "invalid")
            if err.get("type") == "json_invalid":
                field = "body"
            parts.append(f"{field}: {msg}")
    if not parts:
        return None
    data["error"] = "; ".join(parts)
    return json.dumps(data).encode()


async def _json(
    send: Send, status: int, payload: dict[str, Any], headers: list[Any] | None = None
) -> None:
    body = json.dumps(payload).encode()
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


async def _body(receive: Receive) -> bytes:
    """The whole request body (ASGI may deliver it in several messages)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def dispatch(api: Any, service: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one request of a BentoML JSON API as BentoML would, without its request objects.

    ``api`` is the ``bentoml.api`` method (its ``input_spec`` model and original ``func``);
    errors answer as BentoML answers them (400 with pydantic's error list, 500 generic).
    """
    from pydantic import ValidationError

    body = await _body(receive)
    try:
        data = api.input_spec.model_validate_json(body or b"{}")
    except ValidationError as exc:
        detail = exc.errors(include_context=False, include_input=False)
        msg = f"{exc.error_count()} validation error for {exc.title}"
        await _json(send, 400, {"error": msg, "detail": detail})
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
    payload = out.model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ServingMiddleware:
    """Auth, JSON readiness and clear validation errors (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        holder: MutableMapping[str, Any],
        direct: Mapping[str, Any] | None = None,
    ) -> None:
        """``holder["core"]`` is the worker's ScoringCore once the service has started and
        ``holder["service"]`` the service instance; ``direct`` maps routes to the
        ``bentoml.api`` methods served by :func:`dispatch`."""
        self.app = app
        self.holder = holder
        self.direct = dict(direct or {})
        self.routes = FIXED_ROUTES | frozenset(self.direct)
        self._auth: AuthConfig | None = None

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
        if path == "/readyz":
            ready, detail = core.readiness()
            await _json(send, 200 if ready else 503, detail)
            return
        if path == "/metrics":
            await _metrics(send)
            return
        counter = core.metrics.http if core.metrics is not None else None
        route = path if path in self.routes else "other"
        api = None
        if scope.get("method") == "POST":
            # JSON only: a body sent as a form (curl -d) would otherwise parse as no fields
            headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
            if core.cfg.direct_dispatch:
                api = self.direct.get(path)
                if api is not None and (b"x-wattwise-dispatch", b"bentoml") in headers:
                    api = None
            if api is None:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}

        held: dict[str, Any] = {}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and counter is not None:
                core.metrics.child(counter, route, str(message["status"])).inc()
            if message["type"] == "http.response.start" and message["status"] == 400:
                held["start"] = message
                held["body"] = b""
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = validation_message(held["body"]) or held["body"]
                start = held.pop("start")
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        if api is not None:
            await dispatch(api, self.holder["service"], scope, receive, send_wrapper)
        else:
            await self.app(scope, receive, send_wrapper)
