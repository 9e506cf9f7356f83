"""Feast with its real stores (DuckDB offline, SQLite online) on small feature tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import store as fs
from features.services import ServiceDecl

pytestmark = pytest.mark.integration

T = pd.Timestamp


def _write(features_dir: Path, usage: pd.DataFrame, billing: pd.DataFrame) -> None:
    features_dir.mkdir(parents=True, exist_ok=True)
    usage.to_parquet(features_dir / "usage.parquet", index=False)
    billing.to_parquet(features_dir / "billing.parquet", index=False)


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    snaps = [T("2024-02-01", tz="UTC"), T("2024-03-01", tz="UTC"), T("2024-04-01", tz="UTC")]
    usage = pd.DataFrame(
        {
            "customer_id": ["a"] * 3 + ["b"] * 3,
            "event_timestamp": snaps * 2,
            "created_timestamp": snaps * 2,
            "mean_daily_kwh_30d": np.array([10, 11, 12, 20, 21, 22], np.float32),
            "profile": [[0.1, 0.9]] * 6,
        }
    )
    billing = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "event_timestamp": [snaps[0], snaps[0]],
            "created_timestamp": [snaps[0], snaps[0]],
            "last_bill": [100.0, 200.0],
        }
    )
    return usage, billing


# FeatureServices as a model kind declares them (the features layer knows no kinds)
SERVICES = [
    ServiceDecl("churn_v1", ("usage", "billing", "attributes")),
    ServiceDecl("propensity_v1", ("usage", "premise")),
    ServiceDecl("meters_v1", ("windows",)),
]


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    d = tmp_path / "ds"
    _write(d / "features", *_tables())
    fs.apply(d, SERVICES)
    return d


def entity_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "nobody", "a"],
            "event_timestamp": [
                T("2024-03-01", tz="UTC"),
                T("2024-03-15", tz="UTC"),
                T("2024-03-01", tz="UTC"),
                T("2024-02-10", tz="UTC"),
            ],
        }
    )


def test_point_in_time_join_and_unknown_entities(dataset: Path) -> None:
    store = fs.open_store(dataset)
    df = fs.historical(store, "churn_v1", entity_rows())
    assert list(df.customer_id) == ["a", "b", "nobody", "a"]  # every row, input order
    assert df.mean_daily_kwh_30d.tolist()[:2] == [11.0, 21.0]
    assert df.mean_daily_kwh_30d.tolist()[3] == 10.0
    assert df.loc[2].isna()[["mean_daily_kwh_30d", "last_bill"]].all()  # unknown: nulls
    assert df.last_bill.tolist()[0] == 100.0


def test_values_after_the_label_time_do_not_leak(dataset: Path) -> None:
    before = fs.historical(fs.open_store(dataset), "churn_v1", entity_rows())
    usage, billing = _tables()
    usage.loc[usage.event_timestamp > T("2024-03-15", tz="UTC"), "mean_daily_kwh_30d"] = 999.0
    # a value stamped before the label but created after it must not be joined either
    late = pd.DataFrame(
        {
            "customer_id": ["a"],
            "event_timestamp": [T("2024-02-20", tz="UTC")],
            "created_timestamp": [T("2024-03-05", tz="UTC")],
            "mean_daily_kwh_30d": np.array([555.0], np.float32),
            "profile": [[0.5, 0.5]],
        }
    )
    _write(dataset / "features", pd.concat([usage, late], ignore_index=True), billing)
    fs.apply(dataset, SERVICES)
    after = fs.historical(fs.open_store(dataset), "churn_v1", entity_rows())
    pd.testing.assert_frame_equal(before, after)


def test_online_equals_latest_offline(dataset: Path) -> None:
    fs.materialize(dataset)
    store = fs.open_store(dataset)
    got = fs.online(store, "churn_v1", ["a", "b", "nobody"])
    assert got["mean_daily_kwh_30d"] == [12.0, 22.0, None]
    # the only bill row (2024-02-01) is older than the view's TTL at the newest snapshot: a
    # point-in-time join would not use it, so serving must not either (no train/serve skew)
    assert got["last_bill"] == [None, None, None]
    at_latest = pd.DataFrame(
        {"customer_id": ["a", "b"], "event_timestamp": [T("2024-04-01", tz="UTC")] * 2}
    )
    latest = fs.historical(store, "churn_v1", at_latest)
    assert latest.mean_daily_kwh_30d.tolist() == got["mean_daily_kwh_30d"][:2]
    assert latest.last_bill.isna().all()
    assert got["profile"][0] == pytest.approx([0.1, 0.9])


def test_services_cover_only_present_groups(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    _write(d / "features", *_tables())
    objs = fs.definitions(d / "features", SERVICES)
    services = {o.name: o for o in objs if type(o).__name__ == "FeatureService"}
    assert set(services) == {"churn_v1", "propensity_v1"}  # no windows table: no meters_v1
    assert {p.name for p in services["churn_v1"].feature_view_projections} == {"usage", "billing"}
    # one name, two different declarations: refused, naming the service
    from wattwise.errors import ConfigError

    with pytest.raises(ConfigError, match="churn_v1"):
        fs.definitions(d / "features", [*SERVICES, ServiceDecl("churn_v1", ("usage",))])


def test_missing_feature_tables_are_a_clear_error(tmp_path: Path) -> None:
    from wattwise.errors import DataError

    with pytest.raises(DataError, match="features build"):
        fs.apply(tmp_path / "empty", SERVICES)


def test_lean_reader_returns_what_feast_returns(dataset: Path) -> None:
    from features.online import OnlineReader

    fs.materialize(dataset)
    store = fs.open_store(dataset)
    keys = ["b", "nobody", "a"]
    want = store.get_online_features(
        features=store.get_feature_service("churn_v1"),
        entity_rows=[{"customer_id": k} for k in keys],
    ).to_dict()
    got = OnlineReader(store, "churn_v1").get(keys)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], nan_ok=True) if name != "profile" else True
    assert got["profile"][0] == pytest.approx(want["profile"][0])
    assert got["profile"][1] is None and want["profile"][1] is None
    # one key at a time (a scoring request) takes its own query and decoding path
    reader = OnlineReader(store, "churn_v1")
    for i, k in enumerate(keys):
        one = reader.get([k])
        for name in want:
            if name == "profile":
                continue
            assert one[name] == pytest.approx([want[name][i]], nan_ok=True), (k, name)
            assert type(one[name][0]) is type(want[name][i]), (k, name)
