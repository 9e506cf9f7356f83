"""Propensity against its oracle: labels mean what the truth means, and the model and the
oracle are scored on the same test rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features import labels
from features.schema import PROGRAMS
from features.synth.generate import GenerateSummary
from features.tables import read_table
from training.config import load_model_config
from training.data import split
from training.estimators import FramePreprocessor
from training.oracle import EnrollmentOracle, enrollment_oracle
from training.propensity import PropensitySpec, program_metrics
from training.spec import TabularPrepared


@pytest.fixture(scope="module")
def prop_labels(tiny_world: GenerateSummary) -> pd.DataFrame:
    return labels.propensity(tiny_world.out_dir)


def test_customers_without_any_enrolment_keep_their_rows(
    tiny_world: GenerateSummary, prop_labels: pd.DataFrame
) -> None:
    """A customer who never enrols anywhere is a negative, not a missing row (rows kept only
    for customers who enrol somewhere, some time, tell the future through the row set)."""
    enr = read_table(tiny_world.out_dir, "enrollments").to_pandas()
    never = prop_labels[~prop_labels.customer_id.isin(enr.customer_id)]
    assert len(never) > 0
    for p in PROGRAMS:
        assert never[f"enrolled_{p}"].eq(False).all(), p
    # an enrolment on the snapshot day itself is inside the window (the programs features
    # count enrolments strictly before the snapshot as already enrolled)
    j = enr.merge(prop_labels, on="customer_id")
    for p in PROGRAMS:
        jp = j[j.program == p]
        s, t = jp.event_timestamp, jp.enrolled_at
        assert jp[(t >= s) & (t <= s + pd.Timedelta(days=90))][f"enrolled_{p}"].eq(True).all()
        assert jp[(t < s) & jp.ended_at.isna()][f"enrolled_{p}"].isna().all()


def test_oracle_is_the_stored_truth_where_nothing_else_happens(
    tiny_world: GenerateSummary, prop_labels: pd.DataFrame
) -> None:
    """Eligible all window, no consent (no other offer can come), no offer the month before:
    the oracle is the stored probability; never eligible in the window: exactly 0."""
    root = tiny_world.out_dir
    truth = read_table(root, "enrollment_probability").to_pandas()
    cust = read_table(root, "customers").to_pandas()[["customer_id", "consent_marketing"]]
    checked = zero = 0
    for p in ("paperless", "solar", "ev_rate"):
        rows = prop_labels[prop_labels[f"enrolled_{p}"].notna()].reset_index(drop=True)
        o = enrollment_oracle(root, rows, p)
        assert o is not None and len(o.p) == len(rows)
        assert np.all((o.p >= 0) & (o.p <= 1))
        tp = truth[truth.program == p]
        present = [
            rows.merge(
                tp.assign(event_timestamp=tp.snapshot - pd.DateOffset(months=k)),
                on=["customer_id", "event_timestamp"],
                how="left",
            )
            for k in (-1, 0, 1, 2)
        ]
        # the join must keep row order and count
        assert all((x.customer_id.to_numpy() == rows.customer_id.to_numpy()).all() for x in present)
        here = [x.p_no_offer.notna().to_numpy() for x in present]
        assert (o.eligible == here[1]).all()
        consent = rows.merge(cust, on="customer_id", how="left").consent_marketing.fillna(False)
        quiet = (
            here[1]
            & here[2]
            & here[3]
            & ~consent.to_numpy(bool)
            & ~present[0].offered.astype("boolean").fillna(False).to_numpy(bool)
        )
        stored = np.where(
            rows[f"offered_{p}"].to_numpy(bool),
            present[1].p_offer.to_numpy(float),
            present[1].p_no_offer.to_numpy(float),
        )
        assert np.allclose(o.p[quiet], stored[quiet], rtol=1e-5, atol=1e-7)
        checked += int(quiet.sum())
        never = ~(here[1] | here[2] | here[3])
        assert (o.p[never] == 0).all() and (o.uplift[~here[1]] == 0).all()
        zero += int(never.sum())
    assert checked > 50 and zero > 50


def test_program_metrics_score_model_and_oracle_on_the_same_rows() -> None:
    """Ineligible rows (true probability 0) count for both: a model equal to the oracle has
    gap 0, and a model that is perfect only on the ineligible rows does not beat it."""
    rng = np.random.default_rng(0)
    n = 4000
    eligible = rng.random(n) < 0.4
    p_true = np.where(eligible, rng.uniform(0.02, 0.3, n), 0.0)
    y = (rng.random(n) < p_true).astype(float)
    t = rng.random(n) < 0.1
    tau = np.where(eligible, rng.uniform(0, 0.05, n), 0.0)
    oracle = EnrollmentOracle(
        p_true, p_true + tau, p_true, tau, eligible, np.where(eligible, tau, np.nan)
    )
    same = program_metrics(y, t, p_true, tau, oracle)
    assert same["oracle_gap"] == 0.0 and same["roc_auc"] == same["oracle_roc_auc"]
    assert same["qini_share_of_oracle"] == pytest.approx(1.0)
    assert same["truth_coverage"] == pytest.approx(eligible.mean())
    # scored on eligible rows only, the oracle would be far below this all-row AUC
    assert same["oracle_roc_auc"] > same["oracle_roc_auc_on_eligible"] + 0.1
    noisy = np.where(eligible, rng.uniform(0, 1, n), 0.0)  # knows eligibility, nothing else
    worse = program_metrics(y, t, noisy, tau, oracle)
    assert worse["oracle_gap"] > 0.05
    assert worse["rows"] == same["rows"] == n
    no_truth = program_metrics(y, t, p_true, tau, None)  # a source without truth
    assert "oracle_roc_auc" not in no_truth and no_truth["roc_auc"] == same["roc_auc"]
    with pytest.raises(Exception, match="oracle has"):
        program_metrics(y[:-1], t[:-1], p_true[:-1], tau[:-1], oracle)


def test_evaluate_scores_the_oracle_on_the_model_test_rows(
    tiny_world: GenerateSummary, prop_labels: pd.DataFrame
) -> None:
    """The spec's evaluation: oracle ROC-AUC recomputed on every labelled test row matches."""
    root: Path = tiny_world.out_dir
    cfg = load_model_config(
        "propensity", estimator={"n_estimators": 30}, tuning={"n_jobs_lightgbm": 1}
    )
    spec = PropensitySpec()
    df = prop_labels.reset_index(drop=True)
    rng = np.random.default_rng(1)
    cust = read_table(root, "customers").to_pandas().set_index("customer_id")
    feats = pd.DataFrame(
        {
            "noise": rng.normal(size=len(df)),
            "detached": df.customer_id.map(cust.dwelling_type).isin(["detached", "semi_detached"]),
            "has_ev": df.customer_id.map(cust.has_ev).astype(bool),
        }
    )
    df = pd.concat([df, feats], axis=1)
    labels_ = spec.label_columns(df, cfg)
    sp = split(df, spec.split_target(df, cfg), cfg.split, cfg.tuning.seed)
    pre = FramePreprocessor().fit(df.loc[sp.train, list(feats.columns)])
    prep = TabularPrepared(
        dataset_dir=root,
        fingerprint="x",
        df=df,
        X=pre.transform(df[list(feats.columns)]),
        feats=list(feats.columns),
        split=sp,
        pre=pre,
        labels=labels_,
    )
    fitted = spec.fit(prep, cfg, cfg.estimator)
    ev = spec.evaluate(prep, cfg, fitted)
    scored = 0
    for p, met in ev.details["per_program"].items():
        te = sp.test & df[f"enrolled_{p}"].notna().to_numpy()
        y = df.loc[te, f"enrolled_{p}"].astype(float).to_numpy()
        assert met["rows"] == te.sum()
        if "oracle_roc_auc" not in met:
            continue
        o = enrollment_oracle(root, df.loc[te], p)
        assert o is not None
        assert met["oracle_roc_auc"] == pytest.approx(roc_auc_score(y, o.p))
        assert met["oracle_gap"] == pytest.approx(met["oracle_roc_auc"] - met["roc_auc"])
        scored += 1
    assert scored >= 2
    assert any("oracle" in line for line in spec.render(ev))


def test_auc_difference_se_matches_the_bootstrap() -> None:
    """The paired DeLong standard error of a gap agrees with resampling the test rows."""
    from training.metrics import auc_difference_se

    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 3)))).astype(float)
    a, b = x + rng.normal(scale=0.5, size=n), x + rng.normal(scale=1.0, size=n)
    assert auc_difference_se(y, a, a) == 0.0
    boot = []
    for _ in range(200):
        i = rng.integers(0, n, n)
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert auc_difference_se(y, a, b) == pytest.approx(np.std(boot), rel=0.25)
