"""The scoring service's logic, apart from BentoML: models, lookups, scoring, logging.

:class:`ScoringCore` is built once per worker from the validated configs and the registry of
model kinds (training.kinds): it serves every kind with routes, loading each one's
registered version through the kind's adapter. Each handler (named by a kind's route)
takes the kind and the already-parsed request fields, returns the route's response model
and raises :class:`serving.models.RequestError` for anything the caller must fix; the
BentoML service only wires HTTP to these handlers.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from serving.config import Served, ServingConfig, served_kinds
from serving.models import ModelSlot, RequestError, loader
from serving.predlog import PredictionLog, PredictionRecord, default_root
from training.explain import ReasonMethod
from training.kinds import schemas

if TYPE_CHECKING:
    from features.dr.config import PlanningConfig
    from serving.lookup import Customers, Events, OnlineFeatures
    from serving.metrics import ServingMetrics
    from training.kinds import Kind
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
UNKNOWN = "unknown customer_id"
NO_FEATURES = "no online features for this customer (not materialized)"
NO_CONSENT = "no marketing consent"
CONSENT_UNKNOWN = "marketing consent not recorded"


def _num(v: Any) -> float | None:
    f = float(v)
    return f if np.isfinite(f) else None


def _items(
    cols: dict[str, list[Any]], ok: list[int], n: int, features: Sequence[str]
) -> dict[str, list[Any]]:
    """The feature columns of the scorable items (all of them: the columns as they are)."""
    return cols if len(ok) == n else {f: [cols[f][i] for i in ok] for f in features}


# an absolute path (two segments at least), alone or in a URI (sqlite:////x/y.db); not the
# path of a registry URI (models:/churn/3)
ABS_PATH = re.compile(r"(?<![\w.:])/+(?:[^\s/'\"`:,;()\[\]]+/+)+[^\s/'\"`:,;()\[\]]*")


def without_paths(text: str | None) -> str | None:
    """``text`` with every absolute filesystem path replaced by ``<path>``."""
    return None if text is None else ABS_PATH.sub("<path>", text)


def freeze_heap() -> None:
    """Collect once, then move every object alive now out of the collector's sight.

    A worker holds ~540,000 long-lived objects (MLflow, Feast, BentoML, the models); a full
    collection walks them all and stops every request for ~350 ms, which showed as a
    250 ms p99 in the 20 s load runs. Frozen, they are never scanned again: a full collection
    then walks only what requests and reloads create. Done once at start (before the service
    reports ready); a model loaded later is collected normally.
    """
    import gc

    gc.collect()
    gc.freeze()


class ScoringCore:
    """Everything a worker serves with; swaps models atomically on alias moves."""

    # the handlers a kind's routes may name (training.kinds.base.Route.handler)
    HANDLERS = ("churn", "propensity", "breakdown", "dr_predict", "dr_target", "score")

    def __init__(
        self,
        settings: Settings,
        cfg: ServingConfig,
        metrics: ServingMetrics | None = None,
        kinds: dict[str, Kind] | None = None,
    ) -> None:
        from training.kinds import registry

        self.settings = settings
        self.cfg = cfg
        self.metrics = metrics
        self.dataset_dir = settings.data_dir / cfg.dataset
        self.online: OnlineFeatures | None = None
        self.customers: Customers | None = None
        self.events: Events | None = None
        self.lookup_error: str | None = None
        self.predlog: PredictionLog | None = None
        if cfg.predlog.enabled:
            root = settings.path(cfg.predlog.root) if cfg.predlog.root else None
            self.predlog = PredictionLog(
                root or default_root(settings.data_dir), cfg.predlog.resolve_key()
            )
        self.served: dict[str, Served] = served_kinds(
            cfg, kinds if kinds is not None else registry(settings)
        )
        for s in self.served.values():
            for r in s.kind.routes:
                if r.handler not in self.HANDLERS:
                    from wattwise.errors import ConfigError

                    raise ConfigError(
                        f"model kind {s.kind.name}: route {r.path} names handler {r.handler!r};"
                        f" the service has {list(self.HANDLERS)}"
                    )
        self.slots = {
            name: ModelSlot(
                name, s.registered_name, s.alias, s.required, loader(s.kind.adapter, cfg)
            )
            for name, s in self.served.items()
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # ---- start-up, reload, readiness -------------------------------------------------------

    def start(self, background: bool = True) -> None:
        """Open the lookups and load every model that has the alias; start the reload loop."""
        self._open_lookups()
        self.reload()
        self.warm()
        if background:
            self._thread = threading.Thread(target=self._loop, name="model-reload", daemon=True)
            self._thread.start()

    def warm(self) -> None:
        """Score one known customer per model so the first request pays no lazy set-up."""
        if self.customers is None or not len(self.customers):
            return
        ids = [str(c) for c in self.customers.index[:20]]
        calls: dict[str, Any] = {}
        for name, served in self.served.items():
            for r in served.kind.routes:
                if r.handler in ("churn", "propensity", "score"):
                    calls[name] = lambda h=getattr(self, r.handler), k=served.kind: h(
                        k, customer_ids=ids
                    )
        for kind, call in calls.items():
            slot = self.slots.get(kind)
            if slot is None or slot.current is None:
                continue
            # warm-up scores are not predictions: neither logged nor counted
            saved, self.predlog = self.predlog, None
            metrics, self.metrics = self.metrics, None
            try:
                call()
            except Exception:
                log.exception("warm-up of %s failed", kind)
            finally:
                self.predlog, self.metrics = saved, metrics

    def stop(self) -> None:
        self._stop.set()
        if self.predlog is not None:
            self.predlog.close()

    def _open_lookups(self) -> None:
        from serving.lookup import Customers, Events, OnlineFeatures

        try:
            self.online = OnlineFeatures(self.dataset_dir)
            self.customers = Customers(self.dataset_dir)
            self.events = Events(self.dataset_dir)
            self.lookup_error = None
        except Exception as exc:  # reported by /readyz, retried by the reload loop
            self.lookup_error = str(exc)
            log.error("lookups not ready: %s", exc)

    def _resolve(self, name: str, alias: str) -> tuple[str, str] | None:
        """(version, URI to load) of ``name@alias``, or None when the alias does not exist."""
        if self.cfg.model_source == "bento":
            return self._resolve_bento(name)
        from training.registry import alias_version
        from training.tracking import setup

        if self._client is None:
            self._client = setup(self.settings)
        version = alias_version(self._client, name, alias)
        return None if version is None else (version, f"models:/{name}/{version}")

    def _resolve_bento(self, name: str) -> tuple[str, str] | None:
        """The copy built into the Bento (``wattwise-<name>``), with its registry version."""
        import bentoml

        try:
            m = bentoml.models.get(bento_model_name(name))
        except Exception:
            return None
        return str(m.info.labels.get("version", m.tag.version)), f"bento:{m.tag}"

    def reload(self) -> dict[str, dict[str, str | None]]:
        """Check every alias now; load what moved. Returns ``{kind: {from, to}}``."""
        if self.online is None:
            self._open_lookups()
        else:
            assert self.customers is not None and self.events is not None
            self.customers.refresh()
            self.events.refresh()
        moves: dict[str, dict[str, str | None]] = {}
        for kind, slot in self.slots.items():
            old, new = slot.refresh(self._resolve)
            moves[kind] = {"from": old, "to": new}
            if self.metrics is not None:
                if old != new:
                    self.metrics.reloads.labels(kind=kind, outcome="loaded").inc()
                elif slot.error and slot.current is not None:
                    self.metrics.reloads.labels(kind=kind, outcome="failed").inc()
                ver = slot.current.version if slot.current else "0"
                self.metrics.model_version.labels(
                    kind=kind, registered_name=slot.registered_name
                ).set(float(ver) if ver.isdigit() else 1.0)
        return moves

    def _loop(self) -> None:
        while not self._stop.wait(self.cfg.reload_interval_s):
            try:
                self.reload()
            except Exception:  # never let the loop die
                log.exception("reload check failed")

    def readiness(self, public: bool = False) -> tuple[bool, dict[str, Any]]:
        """Ready when the online store is open and every required model is loaded.

        ``public`` (``/readyz``, which needs no key): errors without filesystem paths.
        """
        models = {k: s.status() for k, s in self.slots.items()}
        store_ok = self.online is not None and self.customers is not None
        ready = store_ok and all(s["loaded"] or not s["required"] for s in models.values())
        error = self.lookup_error
        if public:
            error = without_paths(error)
            for m in models.values():
                m["error"] = without_paths(m["error"])
        return ready, {
            "ready": ready,
            "online_store": {
                "loaded": store_ok,
                "dataset": self.cfg.dataset,
                "customers": len(self.customers) if self.customers is not None else 0,
                "error": error,
            },
            "models": models,
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _lookups(self) -> tuple[OnlineFeatures, Customers]:
        if self.online is None or self.customers is None:
            raise RequestError(503, "", f"online store not loaded: {self.lookup_error}")
        return self.online, self.customers

    def _check_size(self, field: str, n: int) -> None:
        if n == 0:
            raise RequestError(422, field, "must not be empty")
        if n > self.cfg.max_batch:
            raise RequestError(
                413, field, f"{n} items is over the limit of {self.cfg.max_batch} per request"
            )

    def threads(self, n: int) -> int:
        return 1 if n <= max(self.cfg.inline_batch, 64) else 2

    def _log(self, records: list[PredictionRecord]) -> None:
        if self.predlog is not None and records:
            self.predlog.append(records)

    def _count(self, endpoint: str, outcome: str, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.child(self.metrics.items, endpoint, outcome).inc(n)

    def _features_for(
        self,
        kind: Kind,
        model_features: Sequence[str],
        kinds: dict[str, str],
        customer_ids: Sequence[str] | None,
        customers: Sequence[schemas.CustomerFeatures] | None,
    ) -> tuple[list[str], dict[str, list[Any]], list[str | None], np.ndarray]:
        """Ids, feature columns, per-item error (None: ok) and customer-table positions.

        Ids: features from the online store. Items with features: validated against the
        model's features (all of them, none other, numbers where the model wants numbers).
        """
        online, known = self._lookups()
        if (customer_ids is None) == (customers is None):
            raise RequestError(422, "customer_ids", "give exactly one of customer_ids or customers")
        if customer_ids is not None:
            self._check_size("customer_ids", len(customer_ids))
            ids = list(customer_ids)
            pos = known.positions(ids)
            errors: list[str | None] = [None if p >= 0 else UNKNOWN for p in pos]
            ok = [i for i, e in enumerate(errors) if e is None]
            cols: dict[str, list[Any]]
            if ok:
                got = online.get(self._service(kind), [ids[i] for i in ok])
                if len(ok) == len(ids):  # every id known (a one-customer request): as read
                    cols = {f: got.get(f) or [None] * len(ids) for f in model_features}
                else:
                    cols = {f: [None] * len(ids) for f in model_features}
                    for f in model_features:
                        src = got.get(f)
                        if src is None:
                            continue
                        col = cols[f]
                        for j, i in enumerate(ok):
                            col[i] = src[j]
                empty = [
                    i
                    for j, i in enumerate(ok)
                    if all(got[f][j] is None for f in model_features if f in got)
                ]
                for i in empty:
                    errors[i] = NO_FEATURES
            else:
                cols = {f: [None] * len(ids) for f in model_features}
            return ids, cols, errors, pos
        assert customers is not None
        self._check_size("customers", len(customers))
        want = set(model_features)
        for i, c in enumerate(customers):
            extra = sorted(set(c.features) - want)
            if extra:
                raise RequestError(
                    422,
                    f"customers[{i}].features.{extra[0]}",
                    f"not a feature of the {kind.name} model (unknown: {extra[:5]})",
                )
            missing = [f for f in model_features if f not in c.features]
            if missing:
                raise RequestError(
                    422,
                    f"customers[{i}].features",
                    f"missing {len(missing)} feature(s) of the {kind.name} model: {missing[:5]}"
                    + (" ..." if len(missing) > 5 else "")
                    + " (send null for an unknown value)",
                )
            for f, v in c.features.items():
                if kinds.get(f) == "numeric" and isinstance(v, str):
                    raise RequestError(
                        422, f"customers[{i}].features.{f}", f"must be a number, got {v!r}"
                    )
        ids = [c.customer_id for c in customers]
        cols = {f: [c.features[f] for c in customers] for f in model_features}
        return ids, cols, [None] * len(ids), known.positions(ids)

    # ---- endpoints -------------------------------------------------------------------------

    def churn(
        self,
        kind: Kind,
        customer_ids: Sequence[str] | None = None,
        customers: Sequence[schemas.CustomerFeatures] | None = None,
        reasons: bool = True,
        reason_method: ReasonMethod | None = None,
    ) -> schemas.ChurnResponse:
        """A binary model with reason codes (the churn kind's route)."""
        t0 = time.perf_counter()
        name = kind.name
        loaded = self.slots_get(name)
        sc = loaded.scorer
        kinds = sc.fast.kinds
        ids, cols, errors, _ = self._features_for(kind, sc.features, kinds, customer_ids, customers)
        ok = [i for i, e in enumerate(errors) if e is None]
        rid = uuid.uuid4().hex
        results = [
            schemas.ChurnResult(customer_id=c, error=e) for c, e in zip(ids, errors, strict=True)
        ]
        if ok:
            sub = _items(cols, ok, len(ids), sc.features)
            out = sc.score(
                sub, len(ok), threads=self.threads(len(ok)), reasons=reasons, method=reason_method
            )
            now = datetime.now(UTC)
            records = []
            for j, i in enumerate(ok):
                p = float(out["probability"][j])
                r = results[i]
                r.probability, r.decision, r.reasons = (
                    p,
                    bool(out["decision"][j]),
                    out["reasons"][j],
                )
                records.append(
                    PredictionRecord(
                        rid,
                        now,
                        loaded.registered_name,
                        loaded.version,
                        ids[i],
                        p,
                        {f: sub[f][j] for f in sc.features},
                    )
                )
            self._log(records)
            if self.metrics is not None:
                self.metrics.observe_probabilities(name, "probability", out["probability"])
        self._count(name, "scored", len(ok))
        self._count(name, "unknown_customer", sum(e == UNKNOWN for e in errors))
        self._count(name, "no_features", sum(e == NO_FEATURES for e in errors))
        self._observe(name, t0)
        return schemas.ChurnResponse(
            request_id=rid,
            model=schemas.ModelInfo(name=loaded.registered_name, version=loaded.version),
            threshold=sc.threshold,
            results=results,
        )

    def propensity(
        self,
        kind: Kind,
        customer_ids: Sequence[str] | None = None,
        customers: Sequence[schemas.CustomerFeatures] | None = None,
        programs: Sequence[str] | None = None,
    ) -> schemas.PropensityResponse:
        """Per program scores, for customers whose record gives marketing consent."""
        t0 = time.perf_counter()
        name = kind.name
        loaded = self.slots_get(name)
        sc = loaded.scorer
        progs = list(programs) if programs else sc.programs
        for i, p in enumerate(progs):
            if p not in sc.programs:
                raise RequestError(
                    422, f"programs[{i}]", f"unknown program {p!r}; known: {sc.programs}"
                )
        kinds = sc.fast.kinds
        ids, cols, errors, _ = self._features_for(kind, sc.features, kinds, customer_ids, customers)
        table = self._lookups()[1].table  # one consistent read: positions and consent
        pos = table.positions(ids)
        reasons: list[str | None] = [None] * len(ids)
        for i, p in enumerate(pos):  # consent from the record only, never from the request
            if errors[i] is not None:
                continue
            if p < 0 or not table.consent_known[p]:  # outside the table: no record
                reasons[i] = CONSENT_UNKNOWN
            elif not table.consent[p]:
                reasons[i] = NO_CONSENT
        ok = [i for i in range(len(ids)) if errors[i] is None and reasons[i] is None]
        rid = uuid.uuid4().hex
        results = [
            schemas.PropensityResult(customer_id=c, error=e, reason=r)
            for c, e, r in zip(ids, errors, reasons, strict=True)
        ]
        if ok:
            sub = _items(cols, ok, len(ids), sc.features)
            out = sc.score(sub, len(ok), progs, threads=self.threads(len(ok)))
            now = datetime.now(UTC)
            records = []
            for j, i in enumerate(ok):
                feats = {f: sub[f][j] for f in sc.features}
                scores = {}
                for p in progs:
                    o = out[p]
                    offer, why = sc.offers[p]
                    scores[p] = schemas.ProgramScore(
                        p_no_offer=float(o["p_no_offer"][j]),
                        p_offer=float(o["p_offer"][j]),
                        uplift=float(o["uplift"][j]),
                        t_learner_uplift=_num(o["t_learner_uplift"][j]),
                        offer=offer,
                        offer_reason=why,
                    )
                    records.append(
                        PredictionRecord(
                            rid,
                            now,
                            loaded.registered_name,
                            loaded.version,
                            ids[i],
                            float(o["p_offer"][j]),
                            {**feats, "program": p, "uplift": float(o["uplift"][j])},
                        )
                    )
                results[i].scores = scores
            self._log(records)
            if self.metrics is not None:
                for p in progs:
                    self.metrics.observe_probabilities(name, f"{p}_p_offer", out[p]["p_offer"])
                    self.metrics.observe_values(name, f"{p}_uplift", out[p]["uplift"])
        self._count(name, "scored", len(ok))
        self._count(name, "no_consent", sum(r is not None for r in reasons))
        self._count(name, "unknown_customer", sum(e == UNKNOWN for e in errors))
        self._observe(name, t0)
        return schemas.PropensityResponse(
            request_id=rid,
            model=schemas.ModelInfo(name=loaded.registered_name, version=loaded.version),
            results=results,
        )

    def breakdown(
        self,
        kind: Kind,
        customer_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        readings: Sequence[schemas.Reading] | None = None,
    ) -> schemas.BreakdownResponse:
        """kWh and share per appliance (and "other") of a customer's period, or of raw
        readings: the function ``wattwise disaggregate`` calls
        (``training.disaggregation.service``), on the loaded version's bundle.

        Checked in this order, each a 4xx naming the field, before anything is read: the
        times (naive: UTC; years 1900-2200), the period's length against
        ``breakdown_max_days``, the customer; then the reads (none in the period: 404)."""
        from training.disaggregation import service as disagg

        t0 = time.perf_counter()
        limit = self.cfg.breakdown_max_days
        try:
            if readings is not None:
                if start is not None or end is not None:
                    raise RequestError(422, "start", "give start and end, or readings, not both")
                self._check_size("readings", len(readings))
                loaded = self.slots_get(kind.name)
                bundle = disagg.bundle_of(loaded.scorer.model)
                got = disagg.parse_readings(
                    [r.ts for r in readings],
                    [r.kwh for r in readings],
                    disagg.model_interval(bundle),
                )
                if disagg.days(got.start, got.end) > limit:
                    raise RequestError(
                        422,
                        "readings",
                        f"the readings span {disagg.days(got.start, got.end):,.1f} days, over the"
                        f" limit of {limit} days per request (breakdown_max_days)",
                    )
                bd = disagg.readings_breakdown(bundle, got, customer_id)
            else:
                if customer_id is None or start is None or end is None:
                    raise RequestError(
                        422, "customer_id", "give customer_id, start and end, or readings"
                    )
                lo, hi = disagg.window(start, end)
                if disagg.days(lo, hi) > limit:
                    raise RequestError(
                        422,
                        "end",
                        f"the period is {disagg.days(lo, hi):,.1f} days, over the limit of "
                        f"{limit} days per request (breakdown_max_days)",
                    )
                _, known = self._lookups()
                if known.positions([customer_id])[0] < 0:
                    raise RequestError(404, "customer_id", f"{UNKNOWN} {customer_id!r}")
                loaded = self.slots_get(kind.name)
                period = disagg.locate(self.dataset_dir, customer_id, lo, hi)
                bd = disagg.period_breakdown(
                    disagg.bundle_of(loaded.scorer.model), self.dataset_dir, period
                )
        except disagg.BreakdownError as exc:
            raise RequestError(exc.status, exc.field, exc.message) from exc
        order = bd.kwh.sort_values(ascending=False, kind="stable").index
        rows = [
            schemas.ApplianceShare(appliance=str(a), kwh=float(bd.kwh[a]), share=float(bd.share[a]))
            for a in order
        ]
        rid = uuid.uuid4().hex
        logged: dict[str, float | str | None] = {"appliance_" + r.appliance: r.kwh for r in rows}
        logged["n_readings"] = float(bd.n_readings)
        self._log(
            [
                PredictionRecord(
                    rid,
                    datetime.now(UTC),
                    loaded.registered_name,
                    loaded.version,
                    customer_id or "",
                    bd.total_kwh,
                    logged,
                )
            ]
        )
        self._observe(kind.name, t0)
        return schemas.BreakdownResponse(
            request_id=rid,
            model=schemas.ModelInfo(name=loaded.registered_name, version=loaded.version),
            customer_id=customer_id,
            start=bd.start.to_pydatetime(),
            end=bd.end.to_pydatetime(),
            total_kwh=bd.total_kwh,
            n_readings=bd.n_readings,
            appliances=rows,
        )

    def _event(self, event_id: str | None, event: schemas.EventSpec | None) -> dict[str, Any]:
        """The event of a request: a row of the events table, or the inline one with the
        planning defaults (notice, incentive) ``dr plan`` gives a proposed event."""
        from training.dr.plan import planned_event

        self._lookups()
        if (event_id is None) == (event is None):
            raise RequestError(422, "event_id", "give exactly one of event_id or event")
        if event is not None:
            if event.end <= event.start:
                raise RequestError(422, "event.end", "must be after event.start")
            return planned_event({"event_id": None, **event.model_dump()}, _planning())
        assert self.events is not None
        got = self.events.get(str(event_id))
        if got is None:
            raise RequestError(404, "event_id", f"unknown event_id {event_id!r}")
        return got

    def _dr_scores(
        self, kind: Kind, loaded: Any, ev: dict[str, Any], ids: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Expected kW reduction and its spread per id (NaN where an item failed) and
        per-item errors: the online FeatureService values and the event's context through
        the builder ``dr plan`` uses (``training.dr.data.event_frame``)."""
        from training.dr.data import event_frame
        from training.dr.plan import response_kw
        from wattwise.errors import DataError

        online, known = self._lookups()
        pos = known.positions(ids)
        errors: list[str | None] = [None if p >= 0 else UNKNOWN for p in pos]
        ok = [i for i, e in enumerate(errors) if e is None]
        kw = np.full(len(ids), np.nan)
        sd = np.full(len(ids), np.nan)
        if ok:
            assert self.events is not None
            past = self.events.table.reset_index()
            past = past[past["kind"] == "dr"] if "kind" in past else past
            ok_ids = [ids[i] for i in ok]
            feats = pd.DataFrame(online.get(self._service(kind), ok_ids))
            try:
                frame = event_frame(self.dataset_dir, ev, ok_ids, feats, past)
            except DataError as exc:
                raise RequestError(422, "event.temperature_c", str(exc)) from exc
            kw[ok], sd[ok] = response_kw(loaded.scorer.predict(frame))
        return kw, sd, errors

    def dr_predict(
        self,
        kind: Kind,
        customer_ids: Sequence[str],
        event_id: str | None = None,
        event: schemas.EventSpec | None = None,
    ) -> schemas.DrPredictResponse:
        t0 = time.perf_counter()
        loaded = self.slots_get(kind.name)
        self._check_size("customer_ids", len(customer_ids))
        ev = self._event(event_id, event)
        ids = list(customer_ids)
        kw, _, errors = self._dr_scores(kind, loaded, ev, ids)
        rid = uuid.uuid4().hex
        now = datetime.now(UTC)
        self._log(
            [
                PredictionRecord(
                    rid,
                    now,
                    loaded.registered_name,
                    loaded.version,
                    ids[i],
                    float(kw[i]),
                    {k: _feature(v) for k, v in ev.items() if k != "customers"},
                )
                for i in range(len(ids))
                if errors[i] is None
            ]
        )
        if self.metrics is not None:
            self.metrics.observe_values(kind.name, "expected_kw_reduction", kw)
        self._observe("dr_predict", t0)
        return schemas.DrPredictResponse(
            request_id=rid,
            model=schemas.ModelInfo(name=loaded.registered_name, version=loaded.version),
            event_id=ev.get("event_id"),
            results=[
                schemas.DrResult(
                    customer_id=c, expected_kw_reduction=_num(k) if e is None else None, error=e
                )
                for c, k, e in zip(ids, kw, errors, strict=True)
            ],
        )

    def dr_target(
        self,
        kind: Kind,
        target_kw: float,
        event_id: str | None = None,
        event: schemas.EventSpec | None = None,
        customer_ids: Sequence[str] | None = None,
        confidence: float | None = None,
    ) -> schemas.DrTargetResponse:
        """Whom to call for the event to reach ``target_kw``: the planning rule of
        ``dr plan`` (``training.dr.plan.select_customers``) at ``confidence`` (default:
        configs/dr.yaml's ``planning.confidence``). Candidates: ``customer_ids``, else the
        customers of the event's region enrolled in demand response at its start."""
        from training.dr.plan import enrolled_customers, select_customers

        t0 = time.perf_counter()
        loaded = self.slots_get(kind.name)
        ev = self._event(event_id, event)
        conf = _planning().confidence if confidence is None else confidence
        if customer_ids is not None:
            if len(customer_ids) == 0:
                raise RequestError(422, "customer_ids", "must not be empty (omit it for all)")
            ids = list(dict.fromkeys(customer_ids))
        else:
            start = pd.Timestamp(ev["start"])
            start = start.tz_localize("UTC") if start.tzinfo is None else start
            cand = enrolled_customers(self.dataset_dir, start, ev.get("region"))
            ids = cand.customer_id.astype(str).tolist()
        if len(ids) > self.cfg.dr_target_max_candidates:
            raise RequestError(
                413,
                "customer_ids",
                f"{len(ids)} candidates is over the limit of {self.cfg.dr_target_max_candidates}",
            )
        kw, sd = np.zeros(0), np.zeros(0)
        if ids:  # an event with no enrolled customers: nothing to select
            kw, sd, _ = self._dr_scores(kind, loaded, ev, ids)
        sel = select_customers(ids, kw, sd, target_kw, conf)
        rows = [
            schemas.DrTargetRow(
                rank=r + 1,
                customer_id=ids[i],
                expected_kw_reduction=float(kw[i]),
                cumulative_kw=float(sel.cum_expected_kw[r]),
                sd_kw=float(sd[i]),
                cumulative_lower_kw=float(sel.cum_lower_kw[r]),
            )
            for r, i in enumerate(sel.order)
        ]
        self._observe("dr_target", t0)
        return schemas.DrTargetResponse(
            request_id=uuid.uuid4().hex,
            model=schemas.ModelInfo(name=loaded.registered_name, version=loaded.version),
            event_id=ev.get("event_id"),
            target_kw=target_kw,
            confidence=conf,
            reached=sel.reached,
            selected_kw=sel.expected_kw,
            lower_kw=sel.lower_kw,
            candidates=len(ids),
            customers=rows,
        )

    def score(
        self,
        kind: Kind,
        customer_ids: Sequence[str] | None = None,
        customers: Sequence[schemas.CustomerFeatures] | None = None,
    ) -> BaseModel:
        """The generic route of a kind (``/<kind>/score``): the customers' FeatureService
        values (online store, or the request's), the kind's derived features
        (``Kind.inputs``), the registered pyfunc, its declared output columns."""
        t0 = time.perf_counter()
        name = kind.name
        loaded = self.slots_get(name)
        online, _ = self._lookups()
        features = online.features(self._service(kind))
        ids, cols, errors, _ = self._features_for(kind, features, {}, customer_ids, customers)
        ok = [i for i, e in enumerate(errors) if e is None]
        rows: list[dict[str, Any]] = [
            {"customer_id": c, "error": e} for c, e in zip(ids, errors, strict=True)
        ]
        rid = uuid.uuid4().hex
        if ok:
            sub = _items(cols, ok, len(ids), features)
            frame = kind.inputs(pd.DataFrame({f: sub[f] for f in features}))
            out = loaded.scorer.predict(frame)
            if not isinstance(out, pd.DataFrame):
                out = pd.DataFrame({next(iter(kind.outputs), "prediction"): np.asarray(out)})
            missing = [c for c in kind.outputs if c not in out.columns]
            if missing:
                raise RequestError(500, "", f"{name} v{loaded.version} does not return {missing}")
            now = datetime.now(UTC)
            records = []
            first = next(iter(kind.outputs))
            for j, i in enumerate(ok):
                for c, typ in kind.outputs.items():
                    v = out[c].iloc[j]
                    rows[i][c] = _num(v) if typ is float else typ(v)
                records.append(
                    PredictionRecord(
                        rid,
                        now,
                        loaded.registered_name,
                        loaded.version,
                        ids[i],
                        _prediction(out[first].iloc[j]),
                        {f: sub[f][j] for f in features},
                    )
                )
            self._log(records)
        self._count(name, "scored", len(ok))
        self._count(name, "unknown_customer", sum(e == UNKNOWN for e in errors))
        self._observe(name, t0)
        response = next(r.response for r in kind.routes if r.handler == "score")
        return response.model_validate(
            {
                "request_id": rid,
                "model": {"name": loaded.registered_name, "version": loaded.version},
                "results": rows,
            }
        )

    def _service(self, kind: Kind) -> str:
        """The FeatureService a kind's requests read."""
        if kind.service_name is None:
            raise RequestError(503, "", f"model kind {kind.name} reads no FeatureService")
        return kind.service_name

    def slots_get(self, kind: str) -> Any:
        slot = self.slots.get(kind)
        if slot is None:
            raise RequestError(503, "", f"model {kind} is not configured in this service")
        return slot.get()

    def _observe(self, endpoint: str, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.child(self.metrics.latency, endpoint).observe(time.perf_counter() - t0)


@cache
def _planning() -> PlanningConfig:
    """configs/dr.yaml's planning settings (the confidence and event defaults of ``dr plan``),
    read once per worker."""
    from features.dr.config import load_dr_config

    return load_dr_config().planning


def _prediction(v: Any) -> float:
    """A pyfunc's first output as the logged prediction (NaN when not a number)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _feature(v: Any) -> float | str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, datetime | pd.Timestamp):
        return pd.Timestamp(v).isoformat()
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def bento_model_name(registered_name: str) -> str:
    """Name of a registered model in the BentoML model store (``wattwise-churn``)."""
    return f"wattwise-{registered_name}".replace("_", "-")
