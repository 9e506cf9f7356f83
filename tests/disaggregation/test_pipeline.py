"""Training through the platform on the tiny world: Optuna, MLflow, registry aliases, the
pyfunc, the feature export and the CLI (`wattwise disaggregate`, `wattwise train ...`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.pipeline.registry import EXTERNAL_GROUPS
from features.synth.generate import GenerateSummary
from tests.disaggregation.conftest import TINY_NET, TINY_SPACE
from training.disaggregation.config import load_disagg_config
from training.disaggregation.prepare import prepare_synthetic
from wattwise.errors import DataError


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from wattwise.app.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def tiny_cfg():  # type: ignore[no-untyped-def]
    return load_disagg_config(
        "disaggregation",
        estimator=TINY_NET,
        search_space=TINY_SPACE,
        tuning={"trials": 2, "timeout_s": 60},
        compare_archs=[],
    )


def test_unseen_homes_split_and_targets(tiny_world: GenerateSummary, tiny_cfg) -> None:  # type: ignore[no-untyped-def]
    P = prepare_synthetic(tiny_world.out_dir, tiny_cfg)
    train, valid, test = (set(P.ids[k]) for k in ("train", "valid", "test"))
    assert train and valid and test
    assert not (train & test) and not (valid & test) and not (train & valid)
    assert P.Y["train"].shape == (*P.X["train"].shape, len(tiny_cfg.appliances))
    # appliances never exceed what the meter saw (plus PV self-consumption, so compare sums
    # only where the home has no PV: truth ≤ metered import + small noise)
    x, y = P.X["train"], np.nansum(P.Y["train"], -1)
    ok = np.isfinite(x)
    assert np.mean(y[ok] <= x[ok] * 1.5 + 50) > 0.95


def test_train_register_predict_export_and_cli(
    tiny_world: GenerateSummary,
    tiny_cfg,  # type: ignore[no-untyped-def]
    mlflow_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    import mlflow

    from training.disaggregation import service
    from training.pipeline import train
    from training.registry import CHAMPION, alias_version, history

    ds = tmp_path / "synthetic"
    shutil.copytree(tiny_world.out_dir, ds)
    res = train(tiny_cfg, mlflow_settings, dataset_dir=ds)  # the one pipeline
    assert res.version == "1" and res.kind == "disaggregation" and res.promotion is not None
    per_model = res.details["per_model"]
    assert set(per_model) == {"mean", "co", "network"}
    for m in per_model.values():
        assert list(m.index) == list(tiny_cfg.appliances)
        assert (m["mae"] >= 0).all()
    assert 0 < res.details["breakdown"]["network"] <= 1
    assert res.tune.trials_total == 2
    # the first version is champion only above the floor: it must beat the mean baseline on
    # the logged test windows (re-scored by the registry from the registered pyfunc)
    gate_skill = res.promotion.candidate_metrics["skill"]
    assert res.promotion.moved == (gate_skill > 0), res.promotion.reason
    client = mlflow.MlflowClient()
    if not res.promotion.moved:  # a tiny network below the mean: use it anyway from here
        client.set_registered_model_alias("disaggregation", CHAMPION, "1")
    assert alias_version(client, "disaggregation", CHAMPION) == "1"
    assert history(mlflow_settings, "disaggregation")[0]["to"] == "1"

    # the registered pyfunc: a window of kWh readings (and their times: the network reads
    # the time of day) in, one series per appliance out
    model = mlflow.pyfunc.load_model("models:/disaggregation@champion")
    assert tiny_cfg.estimator["time_features"]
    kwh = np.r_[np.full(30, 0.3), np.full(18, 2.5)]
    ts = pd.date_range("2024-07-01 06:00", periods=48, freq="30min")
    out = model.predict(pd.DataFrame({"kwh": kwh, "ts": ts}))
    assert list(out.columns) == list(tiny_cfg.appliances) and len(out) == 48
    assert (out.to_numpy() >= 0).all()
    sig = model.metadata.get_input_schema()
    assert sig is not None and sig.input_names() == ["kwh", "ts"]
    # without a ts column, the first reading's time as a parameter gives the same answer
    by_start = model.predict(pd.DataFrame({"kwh": kwh}), params={"start": "2024-07-01T06:00Z"})
    np.testing.assert_allclose(by_start.to_numpy(), out.to_numpy(), rtol=1e-5)
    # the answer depends on the clock: the same readings twelve hours later differ
    later = model.predict(pd.DataFrame({"kwh": kwh, "ts": ts + pd.Timedelta(hours=12)}))
    assert not np.allclose(later.to_numpy(), out.to_numpy())
    with pytest.raises(DataError, match="ts"):
        model.predict(pd.DataFrame({"kwh": kwh}))

    # what the serving endpoint sends (customer_id, tz-aware ts, kwh) through its scorer
    from serving.models import load_pyfunc

    scorer = load_pyfunc("models:/disaggregation@champion")
    frame = pd.DataFrame({"customer_id": "C0", "ts": ts.tz_localize("UTC"), "kwh": kwh})
    served = scorer.predict(frame).select_dtypes("number").sum().to_dict()
    assert served == pytest.approx(out.sum().to_dict(), rel=1e-5)

    # a second training run becomes @challenger (and @champion only if it scores better)
    res2 = train(tiny_cfg, mlflow_settings, dataset_dir=ds, trials=2)
    assert res2.version == "2" and alias_version(client, "disaggregation", "challenger") == "2"
    # the persistent study resumes: its 2 earlier trials stay, the 2 asked for are new
    assert (res2.tune.trials_run, res2.tune.trials_total) == (2, 4)
    pr = res2.promotion
    assert pr is not None and pr.champion == "1"
    # against the champion on the candidate's windows: it moves only on a strict gain
    assert pr.moved == (pr.candidate_metrics["skill"] > pr.champion_metrics["skill"])

    # feature export: the group's contract columns, flags as booleans, shares sum to one
    msg = service.export_features(mlflow_settings, ds, version="1")
    assert "customer-months" in msg
    t = pq.read_table(ds / "features" / "appliances.parquet")
    spec = EXTERNAL_GROUPS["appliances"]
    assert t.column_names == [
        spec.entity,
        "event_timestamp",
        "created_timestamp",
        *spec.feature_names,
    ]
    df = t.to_pandas()
    shares = df[[c for c in df.columns if c.startswith("appl_share_")]].sum(1)
    assert np.allclose(shares, 1.0, atol=1e-4)
    assert df.has_ev.dtype == bool
    assert (df.event_timestamp.dt.day == 1).all()

    # CLI: a customer's month, with the stacked-area plot
    cust = df.customer_id.iloc[0]
    month = (df.event_timestamp.iloc[0] - pd.offsets.MonthBegin(1)).strftime("%Y-%m")
    png = tmp_path / "bd.png"
    code, out_txt, err = run_cli(
        capsys,
        "disaggregate",
        cust,
        "--month",
        month,
        "--data",
        str(ds),
        "--plot",
        "--plot-out",
        str(png),
    )
    assert code == 0, err
    assert re.search(rf"{cust} {month}: [\d,.]+ kWh metered", out_txt)
    assert "hvac" in out_txt and png.stat().st_size > 10_000

    # user errors: one line, named problem
    code, _, err = run_cli(capsys, "disaggregate", cust, "--month", "2024-13", "--data", str(ds))
    assert code != 0 and "YYYY-MM" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "disaggregate", "NOPE", "--month", month, "--data", str(ds))
    assert code != 0 and "NOPE" in err
