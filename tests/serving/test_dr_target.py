"""One answer for demand-response targeting: ``wattwise dr plan`` and ``POST /dr/target``
choose the same customers, with the same expected kW and ``reached``, for the same event.

The service is the one the fixtures start (the dr_response the pipeline trained on the tiny
world, @champion); the CLI runs in-process on the same dataset and registry. The event is
still to come (2031), so both read the online store's latest values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.dr.config import load_dr_config
from features.dr.panel import customer_zones
from serving.server import settings_env
from tests.serving.conftest import Service
from tests.serving.test_service import call

pytestmark = [pytest.mark.integration]

DAY, HOURS, INCENTIVE, TEMP = dt.date(2031, 7, 15), (16, 19), 1.5, 33.0


def run_plan(
    capsys: pytest.CaptureFixture[str], out: Path, region: str, target_kw: float, *extra: str
) -> pd.DataFrame:
    """``wattwise dr plan`` for the sample event; the selected customers it writes."""
    from wattwise.app.cli import main

    args = ["dr", "plan", "--date", DAY.isoformat(), "--hours", f"{HOURS[0]}-{HOURS[1]}"]
    args += ["--target-mw", repr(target_kw / 1000), "--region", region]
    args += ["--incentive", str(INCENTIVE), "--temp", str(TEMP), "--out", str(out), *extra]
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "MW at" in text.out and "wrote" in text.out
    return pd.read_csv(out, dtype={"customer_id": str})


def test_plan_and_target_give_one_answer(
    service: Service,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sv = service.served
    for k, v in settings_env(sv.settings).items():
        monkeypatch.setenv(k, v)
    planning = load_dr_config().planning
    zones = customer_zones(sv.dataset_dir)
    region, tz = zones.groupby(["region", "tz"]).size().idxmax()  # the largest region
    start = pd.Timestamp(dt.datetime.combine(DAY, dt.time(HOURS[0])), tz=tz).tz_convert("UTC")
    event = {
        "region": region,
        "start": start.isoformat(),
        "end": (start + pd.Timedelta(hours=HOURS[1] - HOURS[0])).isoformat(),
        "incentive_per_kwh": INCENTIVE,
        "temperature_c": TEMP,
    }
    # the most the region can promise at the config's confidence (a target out of reach)
    status, huge = call(service, "/dr/target", {"event": event, "target_kw": 1e6})
    assert status == 200, huge
    assert not huge["reached"] and huge["confidence"] == planning.confidence
    best = huge["lower_kw"]
    assert best > 0 and huge["candidates"] >= len(huge["customers"]) > 1
    data = ["--data", str(sv.dataset_dir)]
    cases = [(1e6, None), (0.5 * best, None), (0.5 * best, 0.99)]
    answers = []
    for i, (target, conf) in enumerate(cases):
        body = {"event": event, "target_kw": target}
        extra = [*data]
        if conf is not None:
            body["confidence"] = conf
            extra += ["--confidence", str(conf)]
        status, api = call(service, "/dr/target", body)
        assert status == 200, api
        cli = run_plan(capsys, tmp_path / f"plan{i}.csv", region, target, *extra)
        rows = api["customers"]
        assert [r["customer_id"] for r in rows] == cli.customer_id.tolist()
        np.testing.assert_allclose(
            [r["expected_kw_reduction"] for r in rows], cli.expected_kw, rtol=1e-9
        )
        np.testing.assert_allclose(
            [r["cumulative_lower_kw"] for r in rows], cli.cum_lower_kw, rtol=1e-9
        )
        assert api["reached"] == bool(cli.cum_lower_kw.iloc[-1] >= target)
        assert api["confidence"] == (conf or planning.confidence)
        np.testing.assert_allclose(api["selected_kw"], cli.expected_kw.sum(), rtol=1e-9)
        answers.append(api)
    _, half, strict = answers
    # the rule is the confidence bound, not the expected sum: the smallest set whose lower
    # bound reaches the target, and a stricter confidence needs more customers
    lower = [r["cumulative_lower_kw"] for r in half["customers"]]
    assert half["reached"] and lower[-1] >= 0.5 * best
    assert len(lower) == 1 or lower[-2] < 0.5 * best
    assert half["customers"][-1]["cumulative_kw"] > half["lower_kw"]
    assert len(strict["customers"]) > len(half["customers"]) or not strict["reached"]
