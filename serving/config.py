"""The serving config (``configs/serving.yaml``): models, limits, auth, prediction log.

Loaded once with :func:`load_serving_config` and passed down. The file in use is
``$WW_SERVING_CONFIG`` (else ``configs/serving.yaml``); ``WW_SERVING_A__B=value`` overrides a
key (``WW_SERVING_AUTH__ENABLED=true``). The prefix is not ``WATTWISE_``: those variables are
settings overrides, and the settings model rejects keys it does not know.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from wattwise.config import deep_merge, env_overrides, read_yaml, validate
from wattwise.errors import ConfigError
from wattwise.paths import configs_dir

if TYPE_CHECKING:
    from training.kinds import Kind

ENV_FILE = "WW_SERVING_CONFIG"
ENV_PREFIX = "WW_SERVING"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    """How one model kind is served: the registered model (default: the kind's name), the
    alias loaded, and whether readiness waits for it (default: the kind's ``required``)."""

    registered_name: str | None = None
    alias: str = "champion"
    required: bool | None = None
    enabled: bool = True  # False: the kind's routes are not served


class ApiKey(_Strict):
    """An API key, stored as the SHA-256 (hex) of the key; the key itself is never stored."""

    name: str = Field(min_length=1)
    sha256: str
    admin: bool = False

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.strip().lower()
        if not HEX64.match(v):
            raise ValueError("must be the 64-hex-digit SHA-256 of the key (wattwise serve key)")
        return v


class AuthConfig(_Strict):
    """``Authorization: Bearer <key>`` on every endpoint but the public ones."""

    enabled: bool = True
    keys: list[ApiKey] = []
    public_paths: list[str] = [
        "/healthz",
        "/livez",
        "/readyz",
        "/",
        "/docs.json",
        "/schema.json",
        "/static_content/",
    ]


class PredLogConfig(_Strict):
    """The prediction log: where, and the key of the customer-id hash."""

    enabled: bool = True
    root: Path | None = None  # default <data_dir>/predlog
    key: SecretStr | None = None  # local demo only; production reads key_env
    key_env: str = "WW_PREDLOG_KEY"

    def resolve_key(self) -> bytes:
        """The HMAC key: ``$key_env`` first, then the file's key (refused in production)."""
        env = os.environ.get(self.key_env)
        if env:
            return env.encode()
        if self.key is not None:
            return self.key.get_secret_value().encode()
        raise ConfigError(
            f"prediction log key missing: set ${self.key_env} (at least 16 characters)"
        )


class LimitsConfig(_Strict):
    """What one request may cost the server, checked before its body is parsed."""

    # a 1,000-customer batch with 130 features each is ~5 MB; more is a 413 naming the limit
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # a connection must send a request's headers within this long of its first byte (or of
    # being opened), else it is closed (a partial request gets a 408): no slow-header hold
    header_timeout_s: float = Field(10.0, gt=0, le=600)
    # and the body within this long of the headers (a 408 when the answer has not begun)
    body_timeout_s: float = Field(30.0, gt=0, le=3600)
    # an idle keep-alive connection is closed this long after its last response
    keep_alive_s: float = Field(5.0, gt=0, le=3600)


class ServingConfig(_Strict):
    """Everything the scoring service needs besides the project settings."""

    profile: Literal["local", "production"] = "local"
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    dataset: str = "synthetic"  # dataset under settings.data_dir with the Feast online store
    # every model kind of the registry (training.kinds) with routes is served; entries here
    # override how (kind name -> registered name, alias, required, enabled)
    models: dict[str, ModelEntry] = {}
    model_source: Literal["registry", "bento"] = "registry"
    reload_interval_s: float = Field(30.0, gt=0)
    # wattwise serve start, on SIGTERM or Ctrl+C: how long requests in flight have to finish
    # and every service process to exit before the rest is killed (exit 130); under
    # Kubernetes' default 30 s termination grace, so this stop ends first
    shutdown_grace_s: float = Field(25.0, gt=0)
    max_batch: int = Field(1000, ge=1, le=1_000_000)
    inline_batch: int = Field(32, ge=0)  # batches up to this size are scored on the event loop
    # the JSON scoring routes are validated and called by our ASGI middleware with BentoML's
    # own input models and API functions (serving.http.dispatch): ~1 ms less per request
    direct_dispatch: bool = True
    churn_threshold: float | None = Field(None, gt=0, lt=1)  # None: the model's own
    # reason codes: "shap" (TreeSHAP, the registered model's own reasons), "path" (decision-
    # path contributions: µs whatever the model) or "auto": TreeSHAP when one customer's costs
    # at most reason_shap_budget_ms on the loaded model, else path (docs/serving.md)
    reason_method: Literal["auto", "path", "shap"] = "auto"
    reason_shap_budget_ms: float = Field(0.5, gt=0)
    dr_target_max_candidates: int = Field(100_000, ge=1)
    # the longest period (end - start, days) one /disaggregation/breakdown request may cover:
    # checked before anything is read (a longer one is a 422 naming this key)
    breakdown_max_days: int = Field(366, ge=1, le=36_600)
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    predlog: PredLogConfig = PredLogConfig()

    @model_validator(mode="after")
    def _production_is_locked(self) -> ServingConfig:
        if self.profile == "production":
            if not self.auth.enabled:
                raise ValueError("auth.enabled must be true in the production profile")
            if self.predlog.key is not None:
                raise ValueError(
                    "predlog.key must not be in a production config: set the key_env variable"
                )
        return self


@dataclass(frozen=True)
class Served:
    """A model kind as this service serves it."""

    kind: Kind
    registered_name: str
    alias: str
    required: bool


def served_kinds(cfg: ServingConfig, kinds: Mapping[str, Kind]) -> dict[str, Served]:
    """Every registered kind with routes, as the config's ``models`` entries say (an entry
    for a kind the registry does not have is an error naming it)."""
    unknown = sorted(set(cfg.models) - set(kinds))
    if unknown:
        raise ConfigError(
            f"serving config: models: unknown model kinds {unknown}; known: {sorted(kinds)}"
        )
    out = {}
    for name, kind in kinds.items():
        e = cfg.models.get(name, ModelEntry())
        if kind.routes and e.enabled:
            out[name] = Served(
                kind,
                e.registered_name or name,
                e.alias,
                kind.required if e.required is None else e.required,
            )
    return out


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key (keys are long random tokens, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def config_file() -> Path:
    """The serving YAML in use (``$WW_SERVING_CONFIG`` or ``configs/serving.yaml``)."""
    env = os.environ.get(ENV_FILE)
    return Path(env).expanduser().resolve() if env else configs_dir() / "serving.yaml"


def load_serving_config(path: Path | None = None) -> ServingConfig:
    """Validate the serving config once: file, then ``WW_SERVING_*`` environment overrides."""
    p = path or config_file()
    data = read_yaml(p)
    over = env_overrides(ENV_PREFIX)
    over.pop("config", None)  # WW_SERVING_CONFIG names the file, it is not a key
    return validate(ServingConfig, deep_merge(data, over), str(p))
