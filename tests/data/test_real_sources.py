"""Every real source in ../shared/data imports end to end into canonical tables that validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.ingest.run import run_import
from features.schema import table
from features.tables import read_table, validate
from wattwise.settings import load_settings

SHARED = load_settings().shared_data_dir


def _need(name: str) -> Path:
    p = SHARED / name
    if not p.exists():
        pytest.skip(f"shared data folder {p} is absent")
    return p


def _valid(ds: Path, name: str) -> int:
    t = read_table(ds, name)
    res = validate(table(name), t)
    assert res.rejected.num_rows == 0, res.reasons
    return t.num_rows


def test_greenbutton_samples(tmp_path: Path) -> None:
    g = _need("greenbutton")
    rep = run_import(
        "greenbutton",
        [g / "Coastal_Multi_Family_12hr_Jan_1_2011_to_Jan_1_2012_RetailCustomer_3.xml"],
        tmp_path,
    )
    assert rep.tables["interval_reads"].loaded == 8760
    run_import("greenbutton", [g / "ESPIIntervalBlock.xml"], tmp_path, unit="Wh")
    assert _valid(tmp_path, "interval_reads") > 8760
    meters = read_table(tmp_path, "meters").to_pandas()
    assert "America/Los_Angeles" in set(meters.timezone)


def test_lcl(tmp_path: Path) -> None:
    rep = run_import("lcl", [_need("lcl_smart_meters")], tmp_path, shared_dir=SHARED)
    assert _valid(tmp_path, "interval_reads") > 1_300_000
    assert _valid(tmp_path, "customers") == 80
    ev = read_table(tmp_path, "events").to_pandas()
    assert {"price_high", "price_low"} <= set(ev.kind)
    assert ev.event_id.is_unique and ev.event_id.str.startswith("lcl-").all()
    parts = read_table(tmp_path, "event_participants").to_pandas()
    cust = read_table(tmp_path, "customers").to_pandas().set_index("customer_id")
    called = parts.groupby("customer_id").called.first()
    assert (cust.loc[called.index, "tariff"].eq("dynamic") == called).all()
    assert _valid(tmp_path, "weather") > 20000
    assert sum(rep.tables["interval_reads"].quarantined.values()) == 0


def test_redd(tmp_path: Path) -> None:
    p = _need("nilm_redd") / "redd_house3_lowfreq_3s.csv.gz"
    run_import("redd", [p], tmp_path)
    t = read_table(tmp_path, "highres_power", columns=["channel", "appliance"]).to_pandas()
    mapping = t.drop_duplicates().set_index("channel").appliance
    assert mapping["FRE"] == "refrigerator" and mapping["LI2"] == "lighting"
    assert mapping["WAD"] == "laundry" and mapping["FUR"] == "hvac"
    assert (t.channel == "aggregate").sum() == 385443


def test_powerco(tmp_path: Path) -> None:
    run_import("powerco", [_need("powerco_churn")], tmp_path)
    labels = read_table(tmp_path, "churn_labels").to_pandas()
    assert len(labels) == 11685 and 0.08 < labels.churned.mean() < 0.11
    attrs = read_table(tmp_path, "customer_attributes").to_pandas()
    assert {"cons_12m", "margin_net_pow_ele", "channel_sales", "has_gas"} <= set(attrs.name)
    assert attrs[attrs.name == "channel_sales"].value_str.isna().any()  # MISSING -> null
    assert _valid(tmp_path, "customers") == 11685
