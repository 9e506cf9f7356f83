"""Drift summary from Evidently's tests: quiet on the same distribution, flags real shifts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from serving.monitoring.config import MonitoringConfig, parse_duration
from serving.monitoring.drift import DriftSummary, compute_drift
from serving.monitoring.validate import ValidationResult, WindowResult
from tests.monitoring.synthetic import reference, traffic
from training.reference import build_reference
from wattwise.errors import ConfigError, DataError


def test_same_distribution_is_quiet_and_large_reference_uses_wasserstein() -> None:
    s = compute_drift(reference(), traffic(2000, 1), MonitoringConfig())
    assert s.status == "ok", s.reasons
    methods = {f.column: f.method for f in s.features}
    assert methods["usage_kwh"] == "wasserstein" and methods["region"] == "jensenshannon"
    assert s.prediction is not None and not s.prediction.drifted
    assert s.rows_tested == 2000 and s.rows_reference == 3000


def test_small_reference_uses_ks_and_chi_squared() -> None:
    s = compute_drift(reference(800), traffic(800, 1), MonitoringConfig())
    methods = {f.column: f.method for f in s.features}
    assert methods["usage_kwh"] == "ks" and methods["region"] == "chisquare"
    assert methods["rate_current_tariff"] == "z"  # two values: Evidently's z-test


def test_shift_flags_features_prediction_and_segments() -> None:
    cfg = MonitoringConfig()
    s = compute_drift(reference(), traffic(2000, 2, shift=0.5, tariff_p=0.6), cfg)
    assert "usage_kwh" in s.drifted_features and "rate_current_tariff" in s.drifted_features
    assert "bill" not in s.drifted_features
    assert s.prediction is not None and s.prediction.drifted and s.drift_found
    assert any("prediction drifted" in r for r in s.reasons)
    segs = {(g.segment, g.value) for g in s.segments}
    assert ("region", "inland") in segs and ("tariff", "flat") in segs
    assert all("usage_kwh" in g.drifted_features for g in s.segments if g.segment == "region")
    assert "dwelling_type" in s.skipped_segments  # not in the log: said so, not invented


def test_missing_and_out_of_range_rates() -> None:
    cfg = MonitoringConfig()
    cur = traffic(2000, 3)
    cur.loc[cur.index[:300], "bill"] = np.nan  # 15 % missing
    cur.loc[cur.index[300:400], "usage_kwh"] = 1e4  # 5 % out of range (a broken meter x10)
    s = compute_drift(reference(), cur, cfg)
    f = {c.column: c for c in s.features}
    assert f["bill"].missing_current == pytest.approx(0.15) and f["bill"].missing_reference == 0
    assert f["usage_kwh"].out_of_range == pytest.approx(0.05, abs=0.005)
    assert s.drift_found
    assert any("missing values up" in r for r in s.reasons)
    assert any("out-of-range" in r and "usage_kwh" in r for r in s.reasons)


def test_quality_rules_can_ask_for_several_features() -> None:
    from serving.monitoring.drift import redecide

    cur = traffic(2000, 3)
    cur.loc[cur.index[:300], "bill"] = np.nan  # one feature's missing share up
    s = compute_drift(reference(), cur, MonitoringConfig(), segments=False)
    assert any("missing values up in 1 feature(s)" in r for r in s.reasons)
    two = MonitoringConfig.model_validate({"quality": {"min_features": 2}})
    assert not any("missing values up" in r for r in redecide(s, two).reasons)
    cur.loc[cur.index[:300], "tenure"] = np.nan  # a second one: a broken feed, not a column
    s2 = redecide(compute_drift(reference(), cur, MonitoringConfig(), segments=False), two)
    assert any("missing values up in 2 feature(s)" in r for r in s2.reasons)


def test_unseen_category_counts_as_out_of_range_and_summary_round_trips() -> None:
    cur = traffic(1000, 4)
    cur.loc[cur.index[:100], "region"] = "island"
    s = compute_drift(reference(), cur, MonitoringConfig())
    assert {c.column: c for c in s.features}["region"].out_of_range == pytest.approx(0.1)
    back = DriftSummary.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s


def test_too_few_rows_is_insufficient_not_an_alert() -> None:
    s = compute_drift(reference(), traffic(20, 5, shift=2.0), MonitoringConfig())
    assert s.status == "insufficient" and not s.drift_found and s.features == []


def test_thresholds_come_from_the_config() -> None:
    cur = traffic(2000, 6, shift=0.08)
    loose = MonitoringConfig.model_validate({"drift": {"num_threshold": 5.0}})
    strict = MonitoringConfig.model_validate(
        {"drift": {"per_column_threshold": {"usage_kwh": 0.01}}}
    )
    assert "usage_kwh" not in compute_drift(reference(), cur, loose).drifted_features
    assert "usage_kwh" in compute_drift(reference(), cur, strict).drifted_features


def test_reference_sample_is_seeded_and_checked() -> None:
    t = traffic(500, 7)
    X, p = t.drop(columns="prediction"), t["prediction"].to_numpy()
    a, b = build_reference(X, p, 100, 1), build_reference(X, p, 100, 1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 100 and len(build_reference(X, p, 10_000, 1)) == 500
    assert not a.equals(build_reference(X, p, 100, 2))
    with pytest.raises(DataError, match="predictions"):
        build_reference(X, p[:-1], 100, 1)


def test_durations_and_config_errors() -> None:
    assert parse_duration("7d").days == 7 and parse_duration("12h").seconds == 12 * 3600
    with pytest.raises(ConfigError, match="bad duration"):
        parse_duration("7 days")
    with pytest.raises(ValueError, match="http"):
        MonitoringConfig.model_validate({"alerts": {"webhook_url": "ftp://x"}})


def test_validation_rates() -> None:
    def w(world: str, week: int, flagged: bool) -> WindowResult:
        return WindowResult(
            1, world, week, 0, world != "none" and week > 0, False, flagged, 10, 0, None, [], [], 0
        )

    r = ValidationResult(
        [w("ev_wave", 1, False), w("ev_wave", 2, True), w("ev_wave", 0, False)]
        + [w("none", 1, True)]
        + [w("none", k, False) for k in (2, 3, 4)]
    ).rates()
    assert r["ev_wave"]["detection_rate"] == 0.5 and r["ev_wave"]["first_window_detection"] == 0
    assert r["ev_wave"]["false_alarm_rate"] == pytest.approx(1 / 5)


def test_redecide_applies_per_column_thresholds_ignore_list_and_count_rule() -> None:
    from serving.monitoring.drift import redecide

    cur = traffic(2000, 8, shift=0.15)
    s = compute_drift(reference(), cur, MonitoringConfig())
    assert "usage_kwh" in s.drifted_features and s.drift_found  # prediction moved too
    score = next(f.score for f in s.features if f.column == "usage_kwh")
    pscore = s.prediction.score if s.prediction else 0.0
    lenient = MonitoringConfig.model_validate(
        {"drift": {"per_column_threshold": {"usage_kwh": score * 1.01, "prediction": pscore * 2}}}
    )
    quiet = redecide(s, lenient)
    assert "usage_kwh" not in quiet.drifted_features and quiet.status == "ok", quiet.reasons
    counted = MonitoringConfig.model_validate(
        {"drift": {"min_drifted_features": 1, "prediction_alert": False}}
    )
    assert redecide(s, counted).reasons[0].startswith("1 feature(s) drifted: usage_kwh")
    ignored = MonitoringConfig.model_validate(
        {
            "drift": {
                "min_drifted_features": 1,
                "prediction_alert": False,
                "ignore_columns": ["usage_kwh"],
            }
        }
    )
    assert redecide(s, ignored).status == "ok"


def test_calibration_learns_limits_from_unshifted_windows_only() -> None:
    from serving.monitoring.validate import _Scored, calibrate

    ref = reference()
    cfg = MonitoringConfig()
    normal = [
        compute_drift(ref, traffic(800, s, shift=0.05 * s), cfg, segments=False) for s in (1, 2)
    ]
    shifted = compute_drift(ref, traffic(800, 3, shift=1.0), cfg, segments=False)
    scored = [_Scored(1, "none", k + 1, 0, 800, s, 0.0) for k, s in enumerate(normal)]
    scored.append(_Scored(1, "ev_wave", 1, 0, 800, shifted, 0.0))
    drift, ranges, _ = calibrate(scored, cfg, margin=1.5)
    top = max(f.score for s in normal for f in s.features if f.column == "usage_kwh")
    assert drift["usage_kwh"] == pytest.approx(max(0.1, 1.5 * top), abs=1e-4)
    assert drift["bill"] == pytest.approx(0.1)  # never below Evidently's default
    assert all(v > cfg.quality.out_of_range_max for v in ranges.values())


def test_html_runs_the_same_test_on_a_few_valued_numeric_column(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evidently gives a numeric column of 0/1 a categorical test on small samples; the HTML
    report must declare it categorical to run that same test (it used to refuse)."""
    import re

    from evidently import Report
    from evidently.core.report import Snapshot
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    from serving.monitoring.drift import render_html

    rng = np.random.default_rng(3)
    ref = reference().head(300).assign(flag=rng.integers(0, 2, 300).astype(float))
    cur = traffic(200, 4).assign(flag=rng.integers(0, 2, 200).astype(float))
    cfg = MonitoringConfig()
    s = compute_drift(ref, cur, cfg)
    flag = next(c for c in s.features if c.column == "flag")
    # the summary: a numeric column, given the test Evidently picks for it, a categorical one
    default = get_stattest(ref["flag"], cur["flag"], ColumnType.Numerical, None)
    assert flag.kind == "num" and flag.method == default.name == "z"
    assert default.allowed_feature_types == [ColumnType.Categorical]
    assert flag.score is not None

    runs: list[tuple[tuple, Snapshot]] = []  # what the report is run on, and its snapshot
    run = Report.run

    def spy(self, current_data, reference_data=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        snap = run(self, current_data, reference_data, *args, **kwargs)
        runs.append(((current_data, reference_data), snap))
        return snap

    monkeypatch.setattr(Report, "run", spy)
    path = render_html(ref, cur, s, tmp_path / "r.html", cfg)
    assert path.stat().st_size > 10_000
    ((datasets, snap),) = runs
    # the report's data: the 0/1 column declared categorical, a continuous one numerical
    for ds in datasets:
        dd = ds.data_definition
        assert "flag" in dd.categorical_columns and "flag" not in dd.numerical_columns
        assert "usage_kwh" in dd.numerical_columns
    # the report's metric for it: the same test, giving the summary's score
    (m,) = [m for m in snap.dict()["metrics"] if m["config"].get("column") == "flag"]
    assert m["config"]["method"] == "z"
    assert m["value"] == pytest.approx(flag.score)
    # and the HTML says so
    html = path.read_text()
    label = re.search(r"Drift in column 'flag'\", \"label\": \"([^\"]*)\"", html)
    assert label, "the HTML has no drift counter for flag"
    assert f"method: {default.display_name}. Drift score: {flag.score:.3f}" in label.group(1)
