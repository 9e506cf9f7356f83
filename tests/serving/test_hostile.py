"""The service under hostile input, over real HTTP on the fixture's server (auth on).

Every bad request gets a 4xx naming what is wrong (never a 500), on our direct dispatch and
on BentoML's own path alike; consent comes from the customers table only; the server log
holds no customer id the requests sent. (Runs before test_service.py, whose last test kills
the server.)
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.serving.conftest import ADMIN_KEY, MAX_BODY, USER_KEY, Service
from tests.serving.test_service import call, scored_ids

pytestmark = [pytest.mark.integration]
BENTOML = {"x-wattwise-dispatch": "bentoml"}
PATHS = [{}, BENTOML]  # our dispatch, BentoML's own request path


def raw_post(
    svc: Service, path: str, chunks: list[bytes], headers: dict[str, str], chunked: bool = False
) -> tuple[int, Any]:
    """POST ``chunks`` as they are (``chunked``: without a content-length)."""
    u = urlsplit(svc.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        hdrs = {"authorization": f"Bearer {USER_KEY}", **headers}
        body: Any = iter(chunks) if chunked else b"".join(chunks)
        conn.request("POST", path, body=body, headers=hdrs, encode_chunked=chunked)
        r = conn.getresponse()
        text = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(text)
    except ValueError:
        return r.status, text.decode(errors="replace")


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces (still the same JSON) to exactly ``size`` bytes."""
    text = json.dumps(body).encode()
    return text + b" " * (size - len(text))


@pytest.mark.parametrize("extra", PATHS, ids=["direct", "bentoml"])
def test_a_body_over_the_limit_is_413_naming_it(service: Service, extra: dict[str, str]) -> None:
    good = {"customer_ids": scored_ids(service, 1)}
    ctype = {"content-type": "application/json", **extra}
    status, body = raw_post(service, "/churn/score", [padded(good, MAX_BODY)], ctype)
    assert status == 200, body  # at the limit: served
    over = padded(good, MAX_BODY + 1)
    for path in ("/churn/score", "/propensity/score", "/dr/target"):
        status, body = raw_post(service, path, [over], ctype)
        assert status == 413 and f"limit of {MAX_BODY} bytes" in body["error"], (path, body)
        assert "max_body_bytes" in body["error"] and f"{MAX_BODY + 1} bytes" in body["error"]
    # no content-length (chunked): refused once the body passes the limit
    status, body = raw_post(
        service, "/churn/score", [over[: MAX_BODY // 2], over[MAX_BODY // 2 :]], ctype, True
    )
    assert status == 413 and f"limit of {MAX_BODY} bytes" in body["error"], body
    status, body = raw_post(service, "/churn/score", [padded(good, MAX_BODY)], ctype, True)
    assert status == 200, body


def test_admin_routes_have_the_body_limit_too(service: Service) -> None:
    status, body = call(service, "/admin/status", raw=b" " * (MAX_BODY + 1), key=ADMIN_KEY)
    assert status == 413 and "max_body_bytes" in body["error"], body


@pytest.mark.parametrize("extra", PATHS, ids=["direct", "bentoml"])
def test_a_body_not_sent_as_json_is_415(service: Service, extra: dict[str, str]) -> None:
    body = json.dumps({"customer_ids": scored_ids(service, 1)}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, answer = raw_post(service, "/churn/score", [body], {"content-type": ctype, **extra})
        assert status == 415 and ctype in answer["error"], (ctype, answer)
        assert answer["field"] == "content-type"
    status, answer = raw_post(
        service, "/churn/score", [body], {"content-type": "application/json; charset=utf-8"}
    )
    assert status == 200, answer
    status, answer = raw_post(service, "/churn/score", [body], extra)  # none sent: JSON
    assert status == 200, answer


UNPROCESSABLE: list[tuple[str, dict[str, Any], str]] = [
    # unknown fields (typos) are refused, named
    ("/churn/score", {"customer_ids": ["C1"], "reason": False}, "reason"),
    ("/propensity/score", {"customer_ids": ["C1"], "program": ["x"]}, "program"),
    ("/dr/target", {"event_id": "E1", "target_kw": 5, "customer_id": ["C1"]}, "customer_id"),
    ("/dr/predict", {"event_id": "E1", "customer_ids": ["C1"], "evnt": {}}, "evnt"),
    # out of range
    ("/dr/target", {"event_id": "E1", "target_kw": 0}, "target_kw"),
    ("/dr/target", {"event_id": "E1", "target_kw": 1e400}, "target_kw"),
    (
        "/dr/predict",
        {
            "event": {"start": "2031-07-01T22:00:00Z", "end": "2031-07-02T01:00:00Z"}
            | {"temperature_c": 400},
            "customer_ids": ["C1"],
        },
        "event.temperature_c",
    ),
    (
        "/dr/predict",
        {
            "event": {"start": "2031-07-01T22:00:00", "end": "2031-07-02T01:00:00Z"},
            "customer_ids": ["C1"],
        },
        "event.start",
    ),
    (
        "/dr/target",
        {"event": {"start": "9371-02-08T05:31:20Z", "end": "9371-02-08T08:31:20Z"}}
        | {"target_kw": 1.0},
        "event.start",
    ),
    # not an id as the customers table writes one
    ("/churn/score", {"customer_ids": ["C0000000 "]}, "customer_ids[0]"),
    ("/churn/score", {"customer_ids": ["C\u00e90000000"]}, "customer_ids[0]"),
    ("/churn/score", {"customer_ids": ["x" * 129]}, "customer_ids[0]"),
]


@pytest.mark.parametrize("extra", PATHS, ids=["direct", "bentoml"])
def test_unknown_fields_and_out_of_range_values_are_422_naming_them(
    service: Service, extra: dict[str, str]
) -> None:
    for path, body, field in UNPROCESSABLE:
        status, answer = call(service, path, body, extra=extra)
        assert status == 422, (path, body, status, answer)
        assert answer["field"] == field, (path, body, answer)
        assert answer["error"].startswith(f"{field}: ")
        assert answer["detail"][0]["loc"] == _loc(field), answer
    for raw in (b'{"customer_ids": ["C1"', b"[1, 2]", b'"x"', b"null"):
        status, answer = call(service, "/churn/score", raw=raw, extra=extra)
        assert status == 400 and answer["field"] == "body", (raw, answer)


def _loc(field: str) -> list[str | int]:
    """``customers[0].features`` → ``["customers", 0, "features"]``."""
    out: list[str | int] = []
    for part in field.split("."):
        name, _, rest = part.partition("[")
        out.append(name)
        if rest:
            out.append(int(rest.rstrip("]")))
    return out


def _no_consent(service: Service) -> tuple[str, dict[str, Any]]:
    """A scored customer whose record refuses marketing, and their propensity features."""
    import mlflow
    import pandas as pd

    from features.store import online, open_store
    from features.tables import read_table
    from training.registry import model_inputs
    from training.tracking import setup

    sv = service.served
    cust = read_table(sv.dataset_dir, "customers").to_pandas()
    refused = set(cust.loc[cust.consent_marketing.eq(False), "customer_id"])
    cid = next(c for c in scored_ids(service, 120) if c in refused)
    setup(sv.settings)
    model = mlflow.pyfunc.load_model(f"models:/propensity/{sv.propensity_version}")
    got = pd.DataFrame(online(open_store(sv.dataset_dir), "propensity_v1", [cid]))
    row = model_inputs(model, got).iloc[0].to_dict()
    feats = {k: (None if v != v else v) for k, v in row.items()}  # NaN → null
    return cid, json.loads(json.dumps(feats, default=float))


@pytest.mark.parametrize("extra", PATHS, ids=["direct", "bentoml"])
def test_consent_comes_from_the_record_never_from_the_request(
    service: Service, extra: dict[str, str]
) -> None:
    cid, feats = _no_consent(service)
    claimed = {"customer_id": cid, "features": feats, "consent_marketing": True}
    status, answer = call(service, "/propensity/score", {"customers": [claimed]}, extra=extra)
    assert status == 422 and answer["field"] == "customers[0].consent_marketing", answer
    for variant in (cid + " ", " " + cid, cid + "\t"):
        item = {"customer_id": variant, "features": feats}
        status, answer = call(service, "/propensity/score", {"customers": [item]}, extra=extra)
        assert status == 422 and answer["field"] == "customers[0].customer_id", answer
    # the record says no: no score, whichever way the customer is sent
    status, answer = call(
        service,
        "/propensity/score",
        {"customers": [{"customer_id": cid, "features": feats}], "programs": None},
        extra=extra,
    )
    assert status == 200 and answer["results"][0]["scores"] is None, answer
    assert answer["results"][0]["reason"] == "no marketing consent"
    status, answer = call(service, "/propensity/score", {"customer_ids": [cid]}, extra=extra)
    assert status == 200 and answer["results"][0]["scores"] is None, answer
    # another spelling is another customer, with no record: no consent recorded, no score
    item = {"customer_id": cid.lower(), "features": feats}
    status, answer = call(service, "/propensity/score", {"customers": [item]}, extra=extra)
    assert status == 200 and answer["results"][0]["scores"] is None, answer
    assert answer["results"][0]["reason"] == "marketing consent not recorded"
    status, answer = call(service, "/propensity/score", {"customer_ids": [cid.lower()]})
    assert status == 200 and answer["results"][0]["error"] == "unknown customer_id"


def test_readyz_shows_no_filesystem_path(service: Service) -> None:
    status, body = call(service, "/readyz", key=None)
    assert status == 200, body
    text = json.dumps(body)
    root = str(service.served.dataset_dir.parent)
    assert root not in text and str(service.served.settings.root) not in text
    assert body["online_store"]["dataset"] == service.served.dataset_dir.name


def bad_and_good_requests(ids: list[str]) -> Iterator[tuple[str, Any, str, dict[str, str]]]:
    """(path, body, key, headers): every route, good and bad bodies carrying ``ids``."""
    a, b = ids[0], ids[1]
    for extra in PATHS:
        yield "/churn/score", {"customer_ids": [a, b]}, USER_KEY, extra
        yield "/churn/score", {"customer_ids": [a], "oops": b}, USER_KEY, extra
        yield "/churn/score", {"customer_ids": [{"id": a}, b]}, USER_KEY, extra
        yield "/churn/score", {"customer_ids": [a + " "]}, USER_KEY, extra
        yield "/churn/score", {"customers": [{"customer_id": a, "features": {"x": b}}]}, "", extra
        yield "/churn/score", {"customers": [{"customer_id": a, "features": [b]}]}, USER_KEY, extra
        yield "/propensity/score", {"customer_ids": [a], "programs": [b]}, USER_KEY, extra
        yield (
            "/propensity/score",
            {"customers": [{"customer_id": a, "features": {}, "consent_marketing": b}]},
            USER_KEY,
            extra,
        )
        yield "/dr/predict", {"event_id": a, "customer_ids": [b]}, USER_KEY, extra
        yield "/dr/predict", {"event_id": [a], "customer_ids": b}, USER_KEY, extra
        yield "/dr/target", {"event_id": a, "target_kw": b, "customer_ids": [b]}, USER_KEY, extra
        yield "/dr/target", {"event_id": a, "target_kw": 1.0, "customer_ids": [b]}, USER_KEY, extra
    yield "/admin/status", {"customer_ids": [a]}, ADMIN_KEY, {}
    yield "/admin/reload", {a: b}, ADMIN_KEY, {}
    yield "/admin/reload", [a, b], ADMIN_KEY, {}
    yield "/admin/status", {"x": a}, USER_KEY, {}


def test_no_customer_id_in_the_server_log(service: Service) -> None:
    """Known ids and made-up ones, in good and bad requests on every path: none is logged."""
    known = scored_ids(service, 2)
    made_up = [f"LEAK{uuid.uuid4().hex[:12].upper()}", f"C{uuid.uuid4().int % 10**7:07d}"]
    log_path = service.server.log_path  # type: ignore[attr-defined]
    before = log_path.stat().st_size
    statuses = set()
    for ids in (known, made_up):
        for path, body, key, extra in bad_and_good_requests(ids):
            status, answer = call(service, path, body, key=key or None, extra=extra)
            assert status < 500, (path, body, answer)
            statuses.add(status)
    assert {200, 400, 401, 422} <= statuses, statuses  # the batch had good and bad requests
    with log_path.open("rb") as f:
        f.seek(before)
        text = f.read().decode(errors="replace")
    assert "request body refused" in text  # BentoML's path logged its 4xx, as one line
    leaked = [c for c in [*known, *made_up] if c in text]
    assert leaked == [], [line for line in text.splitlines() if any(c in line for c in leaked)]
    assert "Traceback" not in text
