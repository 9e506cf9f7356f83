"""The promotion gate: absolute floors (the first version too), strict improvement (a tie
keeps the champion), guards, and the reason recorded either way."""

from __future__ import annotations

import pytest

from training.config import GateConfig, parse_floor
from training.registry import gate
from wattwise.errors import ConfigError


def test_floor_rules_parse_and_name_what_fails() -> None:
    assert parse_floor("roc_auc", ">= 0.55") == (">=", 0.55)
    assert parse_floor("qini", "> 0") == (">", 0.0)
    assert parse_floor("rmse", 0.3) == ("<=", 0.3)  # a number: at most for an error metric
    assert parse_floor("roc_auc", 0.55) == (">=", 0.55)  # at least for any other
    g = GateConfig(floor={"roc_auc": ">= 0.55", "qini_observed": "> 0"})
    assert g.floor_failures({"roc_auc": 0.61, "qini_observed": 0.01}) == []
    fails = g.floor_failures({"roc_auc": 0.496, "qini_observed": 0.0})
    assert len(fails) == 2 and "roc_auc 0.4960" in fails[0] and ">= 0.55" in fails[0]
    assert "> 0" in fails[1]
    # a metric the candidate lacks (or NaN) fails: nothing measured, nothing passed
    assert len(g.floor_failures({"roc_auc": float("nan")})) == 2
    for bad in ("about 0.5", "=> 0.5", True):
        with pytest.raises(ValueError, match="floor"):
            parse_floor("roc_auc", bad)  # type: ignore[arg-type]


def test_a_bad_floor_in_a_config_names_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from training.config import load_model_config

    with pytest.raises(ConfigError, match="promotion.floor"):
        load_model_config("churn", promotion={"floor": {"roc_auc": "at least 0.5"}})


def test_a_tie_keeps_the_champion_and_a_gain_moves_it() -> None:
    g = GateConfig(metric="roc_auc", min_delta=0.0, guards={"brier": 0.002})
    champ = {"roc_auc": 0.70, "brier": 0.10}
    ok, why = gate({"roc_auc": 0.70, "brier": 0.10}, champ, g)
    assert not ok and "required > 0" in why
    assert gate({"roc_auc": 0.7001, "brier": 0.10}, champ, g)[0]
    ok, why = gate({"roc_auc": 0.71, "brier": 0.11}, champ, g)  # calibration guard
    assert not ok and "brier" in why
    lower = GateConfig(metric="rmse", higher_is_better=False, min_delta=0.01)
    assert not gate({"rmse": 0.995}, {"rmse": 1.0}, lower)[0]  # gain below min_delta
    assert gate({"rmse": 0.98}, {"rmse": 1.0}, lower)[0]
