"""``POST /disaggregation/breakdown`` and ``wattwise disaggregate`` give one answer.

Over real HTTP against the running service of the serving fixtures (the disaggregation
model trained by the one pipeline on the tiny world, registered @champion): the CLI's
function (``customer_breakdown``, what ``wattwise disaggregate CUSTOMER --month`` prints)
and the route, for the same customers and UTC month, give the same kWh and shares (and the
feature store's monthly row of that month the same shares); times without a zone are UTC;
out-of-range times, absurd readings and over-long periods are a 422 naming the field (never
a 500), and the period limit is checked before any read.

This file runs before test_service.py (which ends by killing the server).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import Served, Service
from tests.serving.test_service import call, scored_ids

pytestmark = [pytest.mark.integration]
MONTH = "2024-07"
WINDOW = {"start": "2024-07-01T00:00:00Z", "end": "2024-08-01T00:00:00Z"}


def cli_breakdown(sv: Served, customer_id: str, month: str):  # type: ignore[no-untyped-def]
    """What ``wattwise disaggregate CUSTOMER --month MONTH`` computes (and prints)."""
    from training.disaggregation.service import customer_breakdown

    return customer_breakdown(sv.settings, sv.dataset_dir, customer_id, month)


def test_cli_and_api_give_the_same_breakdown(service: Service, tmp_path: Path) -> None:
    import shutil

    from training.disaggregation.service import export_features

    sv = service.served
    ids = scored_ids(service, 5)
    # the feature export of the same version (on a copy: the served dataset stays as it is),
    # whose monthly rows are timed at the next 1st: the same UTC month, the same shares
    copy = tmp_path / "synthetic"
    shutil.copytree(sv.dataset_dir, copy)
    export_features(sv.settings, copy, version=sv.disaggregation_version)
    feats = pd.read_parquet(copy / "features" / "appliances.parquet")
    feats = feats[feats.event_timestamp == pd.Timestamp(WINDOW["end"])].set_index("customer_id")
    for cid in ids:
        status, body = call(service, "/disaggregation/breakdown", {"customer_id": cid, **WINDOW})
        assert status == 200, body
        bd = cli_breakdown(sv, cid, MONTH)
        assert body["model"]["version"] == sv.disaggregation_version
        assert body["total_kwh"] == pytest.approx(bd.total_kwh, rel=1e-9)
        got = {a["appliance"]: (a["kwh"], a["share"]) for a in body["appliances"]}
        assert set(got) == set(bd.kwh.index) and "other" in got
        for a, (kwh, share) in got.items():
            assert kwh == pytest.approx(bd.kwh[a], rel=1e-9, abs=1e-9), (cid, a)
            assert share == pytest.approx(bd.share[a], rel=1e-9, abs=1e-9), (cid, a)
        # the appliances and "other" add up to the metered total; shares to one
        assert sum(k for k, _ in got.values()) == pytest.approx(body["total_kwh"], rel=1e-6)
        assert sum(s for _, s in got.values()) == pytest.approx(1.0, abs=1e-9)
        assert pd.Timestamp(body["start"]) == pd.Timestamp(WINDOW["start"])
        assert pd.Timestamp(body["end"]) == pd.Timestamp(WINDOW["end"])
        assert body["n_readings"] == bd.n_readings > 0
        row = feats.loc[cid]
        assert row.appl_total_kwh == pytest.approx(bd.total_kwh, rel=1e-5)
        for a in bd.share.index:  # float32 in the feature table
            assert row[f"appl_share_{a}"] == pytest.approx(bd.share[a], rel=1e-4, abs=1e-6)


def test_the_command_prints_what_the_api_answers(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.server import settings_env
    from tests.disaggregation.test_pipeline import run_cli

    sv = service.served
    cid = scored_ids(service, 1)[0]
    for k, v in settings_env(sv.settings).items():
        monkeypatch.setenv(k, v)
    code, out, err = run_cli(
        capsys, "disaggregate", cid, "--month", MONTH, "--data", str(sv.dataset_dir)
    )
    assert code == 0, err
    status, body = call(service, "/disaggregation/breakdown", {"customer_id": cid, **WINDOW})
    assert status == 200, body
    assert f"{body['total_kwh']:,.1f} kWh metered" in out, out
    for a in body["appliances"]:
        row = f"{a['appliance']:<14}{a['kwh']:>10.1f}{a['share']:>8.1%}"
        assert row in out, (row, out)


def test_times_without_a_zone_are_utc(service: Service) -> None:
    cid = scored_ids(service, 1)[0]
    _, aware = call(service, "/disaggregation/breakdown", {"customer_id": cid, **WINDOW})
    naive = {"customer_id": cid, "start": "2024-07-01", "end": "2024-08-01"}
    status, body = call(service, "/disaggregation/breakdown", naive)
    assert status == 200, body
    assert body["total_kwh"] == aware["total_kwh"] and body["appliances"] == aware["appliances"]
    mixed = {"customer_id": cid, "start": WINDOW["start"], "end": "2024-08-01T00:00:00"}
    status, body = call(service, "/disaggregation/breakdown", mixed)
    assert status == 200 and body["total_kwh"] == aware["total_kwh"], body
    # the same instants written in another zone are the same period
    local = {"customer_id": cid, "start": "2024-06-30T16:00-08:00", "end": "2024-07-31T17:00-07:00"}
    status, body = call(service, "/disaggregation/breakdown", local)
    assert status == 200 and body["total_kwh"] == aware["total_kwh"], body
    # a period the dataset has no reads for is a 404 naming start, not a 500
    later = {"customer_id": cid, "start": "2031-07-01", "end": "2031-08-01"}
    status, body = call(service, "/disaggregation/breakdown", later)
    assert status == 404 and body["error"].startswith("start:"), body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "1600-01-01T00:00:00Z", "end": "1600-02-01T00:00:00Z"}, "start"),
        ({"start": "0001-01-01", "end": "0001-02-01"}, "start"),
        ({"start": "2024-07-01", "end": "9999-12-31T23:59:59"}, "end"),
        ({"start": "2024-07-01", "end": "2024-06-01"}, "end"),
    ],
)
def test_out_of_range_times_are_a_422_naming_the_field(
    service: Service, body: dict[str, str], field: str
) -> None:
    cid = scored_ids(service, 1)[0]
    status, got = call(service, "/disaggregation/breakdown", {"customer_id": cid, **body})
    assert status == 422 and got["field"] == field and got["error"].startswith(f"{field}:"), got


def readings(n: int = 48, **at: object) -> list[dict[str, object]]:
    ts = pd.date_range("2024-07-01", periods=n, freq="30min", tz="UTC")
    out: list[dict[str, object]] = [
        {"ts": t.isoformat(), "kwh": 0.2 + 0.3 * (t.hour >= 17)} for t in ts
    ]
    for key, value in at.items():
        i, field = key.split("_", 1)
        out[int(i[1:])][field] = value
    return out


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        (readings(r3_kwh=1e300), "readings[3].kwh"),
        (readings(r5_kwh=-0.5), "readings[5].kwh"),
        (readings(r0_ts="0001-01-01T00:00:00Z"), "readings[0].ts"),
        (readings(r7_ts="1600-07-01T00:00:00"), "readings[7].ts"),
        (readings(r9_ts=readings()[8]["ts"]), "readings[9].ts"),
    ],
)
def test_absurd_readings_are_a_422_naming_the_field(
    service: Service, rows: list[dict[str, object]], field: str
) -> None:
    status, got = call(service, "/disaggregation/breakdown", {"readings": rows})
    assert status == 422 and got["field"] == field, got


def test_readings_are_one_breakdown_too(service: Service) -> None:
    rows = readings()
    status, body = call(service, "/disaggregation/breakdown", {"readings": rows})
    assert status == 200, body
    assert body["total_kwh"] == pytest.approx(sum(r["kwh"] for r in rows), rel=1e-5)  # type: ignore[misc]
    assert sum(a["share"] for a in body["appliances"]) == pytest.approx(1.0, abs=1e-9)
    assert pd.Timestamp(body["start"]) == pd.Timestamp(rows[0]["ts"])  # type: ignore[arg-type]
    naive = [{"ts": str(r["ts"]).replace("+00:00", ""), "kwh": r["kwh"]} for r in rows]
    status, same = call(service, "/disaggregation/breakdown", {"readings": naive})
    assert status == 200 and same["appliances"] == body["appliances"], same


def test_a_period_over_the_limit_is_refused_at_once(service: Service) -> None:
    cid = scored_ids(service, 1)[0]
    t0 = time.monotonic()
    everything = {"customer_id": cid, "start": "1900-01-01", "end": "2030-01-01"}
    status, body = call(service, "/disaggregation/breakdown", everything)
    assert status == 422 and body["field"] == "end", body
    assert "breakdown_max_days" in body["error"], body
    assert time.monotonic() - t0 < 5
    # the limit is the serving config's, checked before the customer or any read
    status, body = call(service, "/disaggregation/breakdown", {**everything, "customer_id": "C9"})
    assert status == 422 and "breakdown_max_days" in body["error"], body


def test_the_limit_is_checked_before_any_read(
    served_models: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the handler refuses a long period without touching the reads."""
    from serving.config import PredLogConfig, ServingConfig
    from serving.core import ScoringCore
    from serving.models import RequestError
    from training.disaggregation import data, service
    from training.kinds import registry

    cfg = ServingConfig(
        dataset=served_models.dataset_dir.name,
        breakdown_max_days=40,
        predlog=PredLogConfig(enabled=False),
    )
    core = ScoringCore(served_models.settings, cfg, kinds=registry(served_models.settings))
    core.start(background=False)
    kind = core.served["disaggregation"].kind
    cid = str(core.customers.index[0])  # type: ignore[union-attr]

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the interval reads")

    monkeypatch.setattr(data, "load_series", no_read)
    monkeypatch.setattr(service, "load_series", no_read)
    monkeypatch.setattr(service, "count_reads", no_read)
    with pytest.raises(RequestError) as exc:
        core.breakdown(kind, customer_id=cid, start=datetime(2024, 1, 1), end=datetime(2024, 3, 1))
    assert exc.value.status == 422 and exc.value.field == "end"
    assert "40 days" in exc.value.message and "breakdown_max_days" in exc.value.message
    monkeypatch.undo()
    # within the limit the same core answers as the CLI's function
    got = core.breakdown(
        kind, customer_id=cid, start=datetime(2024, 7, 1), end=datetime(2024, 8, 1)
    )
    bd = cli_breakdown(served_models, cid, MONTH)
    assert got.total_kwh == bd.total_kwh
    assert {a.appliance: a.kwh for a in got.appliances} == bd.kwh.to_dict()
    assert np.isfinite(got.total_kwh)
    core.stop()
