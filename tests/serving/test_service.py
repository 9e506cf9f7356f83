"""The scoring service over HTTP on 127.0.0.1: one server (auth on) started by the fixture.

Order matters at the end: the reload test moves @champion, the crash test kills the server.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd
import pytest

from serving.predlog import pseudonymize, read_predictions
from tests.serving.conftest import ADMIN_KEY, PREDLOG_KEY, PROGRAMS, USER_KEY, Service

pytestmark = [pytest.mark.integration]


def call(
    svc: Service,
    path: str,
    body: Any = None,
    key: str | None = USER_KEY,
    raw: bytes | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[int, Any]:
    headers = {"content-type": "application/json", **(extra or {})}
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(
        svc.url + path, data, headers, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        text, status = e.read(), e.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode()


def scored_ids(svc: Service, n: int) -> list[str]:
    """Customers with features at the newest snapshot (what the online store holds)."""
    f = svc.served.frame
    newest = f[f.event_timestamp == f.event_timestamp.max()]
    return newest.dropna(subset=["usage_mean_daily_kwh_30d"]).customer_id.head(n).tolist()


def test_readyz_reports_models_and_store(service: Service) -> None:
    status, body = call(service, "/readyz", key=None)  # public
    assert status == 200 and body["ready"] is True
    assert body["online_store"]["loaded"] and body["online_store"]["customers"] > 0
    m = body["models"]
    sv = service.served
    # every kind of the registry is served, each with the version its training registered
    assert {k: v["version"] for k, v in m.items()} == {
        "churn": sv.churn_version,
        "propensity": sv.propensity_version,
        "disaggregation": sv.disaggregation_version,
        "dr_response": sv.dr_version,
    }
    assert all(v["loaded"] and v["error"] is None for v in m.values())
    assert call(service, "/healthz", key=None)[0] == 200
    # the OpenAPI page lists the kinds' routes, each with its request body's schema
    status, spec = call(service, "/docs.json", key=None)
    assert status == 200
    for route in ("/churn/score", "/propensity/score", "/disaggregation/breakdown", "/dr/predict"):
        assert "requestBody" in spec["paths"][route]["post"], route


def test_churn_scores_equal_the_registered_model_on_online_features(service: Service) -> None:
    import mlflow

    from features.store import online, open_store
    from training.registry import model_inputs
    from training.tracking import setup

    ids = scored_ids(service, 8)
    status, body = call(service, "/churn/score", {"customer_ids": [*ids, "C9999999"]})
    assert status == 200, body
    res = {r["customer_id"]: r for r in body["results"]}
    assert res["C9999999"]["error"] == "unknown customer_id"  # one bad item, not a failed batch
    assert res["C9999999"]["probability"] is None
    assert body["model"] == {"name": "churn", "version": service.served.churn_version}

    setup(service.served.settings)
    model = mlflow.pyfunc.load_model(f"models:/churn/{service.served.churn_version}")
    feats = pd.DataFrame(online(open_store(service.served.dataset_dir), "churn_v1", ids))
    # the registered model's own code (MLflow's schema check would refuse integer columns
    # holding missing values, which the online store serves: the service scores them)
    want = model.unwrap_python_model().predict(None, model_inputs(model, feats))
    got = np.array([res[c]["probability"] for c in ids])
    np.testing.assert_allclose(got, want.probability.to_numpy(), rtol=1e-9)
    assert [res[c]["decision"] for c in ids] == want.decision.tolist()
    # the default reasons are decision-path contributions; TreeSHAP on request is what the
    # registered model's own reason codes are
    assert all(set(res[c]["reasons"]) <= set(feats.columns) for c in ids)
    status, shap = call(service, "/churn/score", {"customer_ids": ids, "reason_method": "shap"})
    assert status == 200, shap
    # (a customer with no positive contribution has no reason: "" in the pyfunc's frame)
    assert [(r["reasons"] or [""])[0] for r in shap["results"]] == want.reason_1.tolist()

    # the same customers with caller-computed features score the same
    items = [
        {"customer_id": c, "features": {k: row[k] for k in model_inputs(model, feats).columns}}
        for c, (_, row) in zip(ids, feats.iterrows(), strict=True)
    ]
    items = json.loads(json.dumps(items, default=float).replace("NaN", "null"))
    status, body2 = call(service, "/churn/score", {"customers": items})
    assert status == 200, body2
    np.testing.assert_allclose([r["probability"] for r in body2["results"]], got, rtol=1e-6)


BAD = [
    ({"customer_ids": [1, 2]}, 422, "customer_ids[0]"),
    ({"customer_id": ["C1"]}, 422, "customer_id: Extra inputs"),  # a typo is not ignored
    ({}, 422, "customer_ids"),
    ({"customer_ids": []}, 422, "customer_ids"),
    ({"customer_ids": [f"C{i:07d}" for i in range(51)]}, 413, "customer_ids"),
    (
        {"customers": [{"customer_id": "C1", "features": {"usage_mean_daily_kwh_30d": 1.0}}]},
        422,
        "customers[0].features",
    ),
    (
        {"customers": [{"customer_id": "C1", "features": {"nope": 1.0}}]},
        422,
        "customers[0].features.nope",
    ),
    ({"customers": [{"customer_id": "C1"}]}, 422, "customers[0].features"),
    ({"customer_ids": ["C1"], "reasons": "yes"}, 422, "reasons"),
]


def test_bad_input_is_a_4xx_naming_the_field(service: Service) -> None:
    for body, status, field in BAD:
        got, answer = call(service, "/churn/score", body)
        assert got == status, (body, got, answer)
        assert field in answer["error"], (body, answer)
    for raw, status, field in [
        (
            b'{"customers": [{"customer_id": "C1", "features": {"x": NaN}}]}',
            422,
            "customers[0].features.x",
        ),
        (
            b'{"customers": [{"customer_id": "C1", "features": {"x": Infinity}}]}',
            422,
            "customers[0].features.x",
        ),
        (b'{"customer_ids": ["C1"', 400, "body"),  # not JSON, or not an object: 400
        (b"[1, 2]", 400, "body"),
    ]:
        got, answer = call(service, "/churn/score", raw=raw)
        assert got == status and field in answer["error"], (raw, got, answer)
        assert "finite" in answer["error"] or b"NaN" not in raw and b"Inf" not in raw
    got, answer = call(service, "/propensity/score", {"customer_ids": ["C1"], "programs": ["x"]})
    assert got == 422 and "programs[0]" in answer["error"]
    got, answer = call(service, "/dr/target", {"event_id": "E1", "target_kw": -5})
    assert got == 422 and answer["field"] == "target_kw", answer


def test_direct_dispatch_answers_as_bentoml_does(service: Service) -> None:
    """The middleware's dispatch of the JSON routes gives BentoML's own answers."""
    ids = scored_ids(service, 3)
    cases: list[tuple[str, Any, bytes | None]] = [
        ("/churn/score", {"customer_ids": ids[:1]}, None),
        ("/churn/score", {"customer_ids": [*ids, "nobody"], "reason_method": "path"}, None),
        ("/propensity/score", {"customer_ids": ids[:2]}, None),
        ("/propensity/score", {"customer_ids": ["C1"], "programs": ["x"]}, None),
        ("/dr/target", {"event_id": "E1", "target_kw": -5}, None),
        ("/churn/score", None, b'{"customer_ids": ["C1"'),
        ("/churn/score", None, b""),
        *[("/churn/score", body, None) for body, _, _ in BAD],
    ]
    for path, body, raw in cases:
        direct = call(service, path, body, raw=raw)
        slow = call(service, path, body, raw=raw, extra={"x-wattwise-dispatch": "bentoml"})
        assert direct[0] == slow[0], (path, body, raw, direct, slow)
        a, b = direct[1], slow[1]
        if isinstance(a, dict) and isinstance(b, dict):
            a, b = ({k: v for k, v in d.items() if k != "request_id"} for d in (a, b))
        assert a == b, (path, body, raw)


def test_api_keys_and_admin_endpoints(service: Service) -> None:
    body = {"customer_ids": scored_ids(service, 1)}
    assert call(service, "/churn/score", body, key=None)[0] == 401
    status, answer = call(service, "/churn/score", body, key="not-a-key")
    assert status == 401 and "invalid API key" in answer["error"]
    assert call(service, "/churn/score", body, key=ADMIN_KEY)[0] == 200
    status, answer = call(service, "/admin/reload", {}, key=USER_KEY)
    assert status == 403 and "admin" in answer["error"]
    status, answer = call(service, "/admin/reload", {}, key=ADMIN_KEY)
    assert status == 200 and answer["reloaded"]["churn"]["to"] == service.served.churn_version
    assert call(service, "/metrics", key=None)[0] == 401


def test_propensity_respects_marketing_consent(service: Service) -> None:
    from features.tables import read_table

    cust = read_table(service.served.dataset_dir, "customers").to_pandas().set_index("customer_id")
    ids = scored_ids(service, 30)
    status, body = call(service, "/propensity/score", {"customer_ids": ids})
    assert status == 200, body
    for r in body["results"]:
        consent = cust.loc[r["customer_id"], "consent_marketing"]
        if r["error"]:
            continue
        if consent is True or consent == 1:
            assert set(r["scores"]) == set(PROGRAMS) and r["reason"] is None
            for s in r["scores"].values():
                # one calibrated model: the uplift is the difference of its probabilities
                assert 0 <= s["p_no_offer"] <= 1 and 0 <= s["p_offer"] <= 1
                assert s["uplift"] == pytest.approx(s["p_offer"] - s["p_no_offer"], abs=1e-12)
                assert s["offer"] == (s["offer_reason"] is None)
        else:
            assert r["scores"] is None and "consent" in r["reason"]
    outcomes = {r["reason"] for r in body["results"]}
    assert None in outcomes and "no marketing consent" in outcomes


def test_metrics_and_prediction_log(service: Service) -> None:
    ids = scored_ids(service, 3)
    status, body = call(service, "/churn/score", {"customer_ids": ids})
    assert status == 200
    _, text = call(service, "/metrics", key=USER_KEY)
    assert (
        f'wattwise_model_version{{kind="churn",registered_name="churn"}} {float(service.served.churn_version)}'
        in text
    )
    assert 'wattwise_items_total{endpoint="churn",outcome="scored"}' in text
    assert (
        "wattwise_prediction_probability_bucket" in text
        and "wattwise_request_seconds_bucket" in text
    )
    assert 'wattwise_http_requests_total{path="/churn/score",status="200"}' in text
    log = read_predictions(service.predlog_root, "churn")
    mine = log[log.request_id == body["request_id"]]
    assert len(mine) == 3 and set(mine.model_version) == {service.served.churn_version}
    assert mine.customer_key.tolist() == [pseudonymize(PREDLOG_KEY.encode(), c) for c in ids]
    np.testing.assert_allclose(mine.prediction, [r["probability"] for r in body["results"]])
    assert mine.usage_mean_daily_kwh_30d.notna().all()


def test_alias_move_swaps_the_model_without_failing_a_request(service: Service) -> None:
    from mlflow import MlflowClient

    from training.tracking import setup

    setup(service.served.settings)
    client = MlflowClient()
    old = service.served.churn_version
    mv = client.get_model_version("churn", old)
    new = client.create_model_version("churn", mv.source, mv.run_id).version
    seen: list[tuple[float, int, str | None]] = []
    stop = threading.Event()
    ids = scored_ids(service, 5)

    def load() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            status, body = call(service, "/churn/score", {"customer_ids": ids})
            ver = body["model"]["version"] if status == 200 else None
            seen.append((sent, status, ver))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    client.set_registered_model_alias("churn", "champion", str(new))
    status, answer = call(service, "/admin/reload", {}, key=ADMIN_KEY)
    swapped = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert status == 200 and answer["reloaded"]["churn"] == {"from": old, "to": str(new)}
    assert all(s == 200 for _, s, _ in seen), [s for _, s, _ in seen if s != 200]
    assert {v for *_, v in seen} == {old, str(new)}
    assert all(v == str(new) for t, _, v in seen if t > swapped)  # sent after the swap


def test_every_kind_answers_with_the_model_its_training_registered(service: Service) -> None:
    """Disaggregation and DR response over HTTP, served by the versions ``train`` registered
    on the tiny world, with the inputs built by the same code as in training."""
    import mlflow

    from features.dr.config import load_dr_config
    from features.store import online, open_store
    from features.tables import read_table
    from training.dr.data import event_context_of, model_frame
    from training.registry import model_inputs
    from training.tracking import setup

    sv = service.served
    setup(sv.settings)
    ids = scored_ids(service, 10)
    reads = read_table(sv.dataset_dir, "interval_reads", columns=["ts"]).column(0)
    end = pd.Timestamp(reads.to_pandas().max())
    week = {"start": (end - pd.Timedelta(days=7)).isoformat(), "end": end.isoformat()}
    status, body = call(service, "/disaggregation/breakdown", {"customer_id": ids[0], **week})
    assert status == 200, body
    assert body["model"] == {"name": "disaggregation", "version": sv.disaggregation_version}
    shares = [a["share"] for a in body["appliances"]]
    assert np.isfinite(body["total_kwh"]) and body["total_kwh"] >= 0
    assert all(np.isfinite(shares)) and sum(shares) <= 1 + 1e-9
    ts = pd.date_range("2025-01-01", periods=48, freq="30min", tz="UTC")  # max batch 50
    readings = [{"ts": t.isoformat(), "kwh": 0.2 + 0.3 * (t.hour >= 17)} for t in ts]
    status, body = call(service, "/disaggregation/breakdown", {"readings": readings})
    assert status == 200 and np.isfinite(body["total_kwh"]), body
    status, body = call(service, "/disaggregation/breakdown", {"customer_id": "C9999999", **week})
    assert status == 404 and "customer_id" in body["error"]
    status, body = call(
        service,
        "/disaggregation/breakdown",
        {"customer_id": ids[0], "start": week["end"], "end": week["start"]},
    )
    assert status == 422 and body["error"].startswith("end:")

    events = read_table(sv.dataset_dir, "events").to_pandas()
    dr_events = events[events.kind == "dr"]
    ev = dr_events.iloc[-1]
    status, body = call(
        service, "/dr/predict", {"event_id": ev.event_id, "customer_ids": [*ids, "C9999999"]}
    )
    assert status == 200, body
    assert body["model"] == {"name": "dr_response", "version": sv.dr_version}
    kw = {r["customer_id"]: r["expected_kw_reduction"] for r in body["results"]}
    assert kw["C9999999"] is None and all(np.isfinite(kw[c]) for c in ids)
    # the registered pyfunc on the inputs training builds (features, event context, derived
    # x_* features) gives the same numbers: serving and training share the input builder
    model = mlflow.pyfunc.load_model(f"models:/dr_response/{sv.dr_version}")
    feats = pd.DataFrame(online(open_store(sv.dataset_dir), "dr_response_v1", ids))
    ctx = event_context_of(sv.dataset_dir, ev.to_dict(), dr_events)
    frame = model_frame(pd.DataFrame({"customer_id": ids, **ctx}), feats)
    want = model.predict(model_inputs(model, frame))["expected_kw"].to_numpy()
    np.testing.assert_allclose([kw[c] for c in ids], want, rtol=1e-9)
    status, body = call(service, "/dr/predict", {"event_id": "NOPE", "customer_ids": ids})
    assert status == 404 and "event_id" in body["error"]
    # an event given inline: weather from the dataset, or the forecast where it has none
    known_day = {"start": ev.start.isoformat(), "end": ev["end"].isoformat()}
    status, body = call(service, "/dr/predict", {"event": known_day, "customer_ids": ids})
    assert status == 200 and all(np.isfinite(r["expected_kw_reduction"]) for r in body["results"])
    future = {"start": "2031-07-01T22:00:00Z", "end": "2031-07-02T01:00:00Z"}
    status, body = call(service, "/dr/predict", {"event": future, "customer_ids": ids})
    assert status == 422 and body["field"] == "event.temperature_c", body
    future["temperature_c"] = 34.0
    status, body = call(service, "/dr/predict", {"event": future, "customer_ids": ids})
    assert status == 200 and all(np.isfinite(r["expected_kw_reduction"]) for r in body["results"])

    positive = sorted(v for c in ids if (v := kw[c]) > 0)
    target = sum(positive[-3:]) * 0.5  # the top three expect twice the target
    status, body = call(
        service, "/dr/target", {"event_id": ev.event_id, "target_kw": target, "customer_ids": ids}
    )
    assert status == 200, body
    ranked = [r["expected_kw_reduction"] for r in body["customers"]]
    assert ranked == sorted(ranked, reverse=True) and ranked == positive[::-1][: len(ranked)]
    # taken until the lower bound at the planning confidence reaches the target (the rule
    # of `dr plan`, tests/serving/test_dr_target.py): the smallest such set
    lower = [r["cumulative_lower_kw"] for r in body["customers"]]
    confidence = load_dr_config().planning.confidence
    assert body["confidence"] == confidence and body["lower_kw"] == lower[-1]
    assert body["reached"] == (lower[-1] >= target)
    if body["reached"]:
        assert len(lower) == 1 or lower[-2] < target
    else:
        assert lower[-1] == max(lower)
    assert body["selected_kw"] == pytest.approx(sum(ranked))


def test_acknowledged_predictions_survive_kill_9(service: Service) -> None:
    import os
    import signal

    ids = scored_ids(service, 2)
    status, body = call(service, "/churn/score", {"customer_ids": ids})
    assert status == 200
    for pid in service.server.pids():  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    log = read_predictions(service.predlog_root, "churn")
    got = log[log.request_id == body["request_id"]]
    assert got.customer_key.tolist() == [pseudonymize(PREDLOG_KEY.encode(), c) for c in ids]
