"""Hourly panels from the canonical tables against a pandas reference, on hand-made reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.dr.evaluate import _data_days
from features.dr.panel import customer_zones, load_panel, load_zone_panels
from features.tables import write_parts, write_table
from wattwise.errors import DataError

FIRST, LAST = dt.date(2024, 3, 29), dt.date(2024, 4, 2)  # London springs forward on 31 March
METERS = pd.DataFrame(
    {
        "meter_id": ["M-a", "M-b1", "M-b2", "M-c", "M-gas"],
        "customer_id": ["A", "B", "B", "C", "A"],
        "service_kind": ["electric", "electric", "electric", "electric", "gas"],
        "interval_minutes": [30, 60, 30, 30, 30],
        "timezone": ["Europe/London"] * 3 + ["Etc/GMT+8", "Europe/London"],
    }
)
MISSING = pd.Timestamp("2024-03-30 10:30", tz="UTC")  # one half-hour of M-a never arrived


def _reads() -> pd.DataFrame:
    """Reads of every meter from 27 March to 5 April, kWh a known function of meter and time."""
    frames = []
    for i, m in enumerate(METERS.itertuples()):
        ts = pd.date_range("2024-03-27", "2024-04-05", freq=f"{m.interval_minutes}min", tz="UTC")
        ts = ts[:-1]
        kwh = 0.1 * (i + 1) + 0.01 * ((ts.hour + ts.day) % 7)
        frames.append(pd.DataFrame({"meter_id": m.meter_id, "ts": ts, "kwh": kwh}))
    df = pd.concat(frames, ignore_index=True)
    return df[~((df.meter_id == "M-a") & (df.ts == MISSING))].reset_index(drop=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("panel") / "hand"
    customers = pa.table(
        {
            "customer_id": ["A", "B", "C"],
            "premise_id": ["P-A", "P-B", "P-C"],
            "region": ["north", "north", "south"],
            "source": ["test"] * 3,
        }
    )
    write_table(ds, "customers", customers)
    write_table(
        ds, "meters", pa.Table.from_pandas(METERS.assign(premise_id="P"), preserve_index=False)
    )
    reads = _reads()
    # several files per month, each holding some meters (as the generator writes them)
    for month, g in reads.groupby(reads.ts.dt.strftime("%Y-%m")):
        for j, ids in enumerate((["M-a", "M-b1"], ["M-b2", "M-c", "M-gas"])):
            part = g[g.meter_id.isin(ids)].sort_values(["meter_id", "ts"])
            table = pa.Table.from_pandas(
                part.assign(kwh=part.kwh.astype("float32")), preserve_index=False
            )
            write_parts(ds, "interval_reads", table, part=f"chunk-{j}", partition_value=month)
    hours = pd.date_range("2024-03-27", "2024-04-05", freq="h", tz="UTC")[:-1]
    weather = pd.concat(
        [
            pd.DataFrame({"region": r, "ts": hours, "temperature_c": off + hours.hour.to_numpy()})
            for r, off in (("north", 0.0), ("south", 100.0))
        ]
    )
    write_table(ds, "weather", pa.Table.from_pandas(weather, preserve_index=False))
    return ds


def _reference(tz: str, customer: str) -> pd.Series:
    """Local-hour kWh of one customer by pandas: complete hours only (every meter, every read)."""
    m = METERS[(METERS.customer_id == customer) & (METERS.service_kind == "electric")]
    r = _reads().merge(m, on="meter_id")
    r["local"] = r.ts.dt.tz_convert(tz).dt.tz_localize(None).dt.floor("h")
    g = r.groupby(["meter_id", "local"]).agg(kwh=("kwh", "sum"), n=("kwh", "size"))
    per_h = 60 / m.set_index("meter_id").interval_minutes
    g["full"] = g.n >= per_h.reindex(g.index.get_level_values(0)).to_numpy()
    c = g.groupby(level="local").agg(kwh=("kwh", "sum"), full=("full", "all"), k=("n", "size"))
    c.loc[~c.full | (c.k < len(m)), "kwh"] = np.nan
    return c.kwh


def _panel_series(p, customer: str) -> pd.Series:  # type: ignore[no-untyped-def]
    i = list(p.customers).index(customer)
    idx = pd.date_range(str(p.first_day), periods=p.n_days * 24, freq="h")
    return pd.Series(p.kwh[i].ravel(), index=idx)


def test_zone_panels_match_a_pandas_reference(dataset: Path) -> None:
    zones = customer_zones(dataset)
    assert dict(zip(zones.customer_id, zones.tz, strict=True)) == {
        "A": "Europe/London",
        "B": "Europe/London",
        "C": "Etc/GMT+8",
    }
    panels = load_zone_panels(dataset, zones, FIRST, LAST, calendar="none", threads=2)
    assert sorted(panels) == ["Etc/GMT+8", "Europe/London"]
    london, west = panels["Europe/London"], panels["Etc/GMT+8"]
    assert list(london.customers) == ["A", "B"] and list(west.customers) == ["C"]
    assert london.kwh.shape == (2, 5, 24)
    for p, c in ((london, "A"), (london, "B"), (west, "C")):
        got = _panel_series(p, c)
        ref = _reference(p.tz, c).reindex(got.index)
        assert np.allclose(got, ref, equal_nan=True, rtol=1e-6), c
        assert np.array_equal(np.isnan(got), np.isnan(ref)), c
    a = _panel_series(london, "A")
    assert np.isnan(a[pd.Timestamp("2024-03-30 10:00")])  # a read missing: NaN, not low
    assert np.isnan(a[pd.Timestamp("2024-03-31 01:00")])  # the hour the clocks skip
    assert np.isfinite(a[pd.Timestamp("2024-03-31 02:00")])
    # weather lands on the local clock of each zone, per region
    assert london.regions == ["north"] and west.regions == ["south"]
    assert london.temp_c[0, 0, 5] == 5.0  # winter time: local = UTC
    assert london.temp_c[0, 4, 5] == 4.0  # summer time: local 05:00 = 04:00 UTC
    assert west.temp_c[0, 0, 5] == 100.0 + 13  # UTC-8
    # one zone on its own, or a subset of its customers, reads the same numbers
    one = load_panel(dataset, ["B"], FIRST, LAST, "Europe/London", threads=1)
    assert np.allclose(one.kwh[0], london.kwh[1], equal_nan=True)


def test_panels_refuse_bad_ranges_and_find_the_data_days(dataset: Path) -> None:
    zones = customer_zones(dataset)
    with pytest.raises(DataError, match="empty day range"):
        load_zone_panels(dataset, zones, LAST, FIRST)
    with pytest.raises(DataError, match="no interval reads"):
        load_zone_panels(dataset, zones, dt.date(2030, 1, 1), dt.date(2030, 1, 2))
    with pytest.raises(DataError, match="lacks columns"):
        load_zone_panels(dataset, zones.drop(columns="tz"), FIRST, LAST)
    assert _data_days(dataset) == (dt.date(2024, 3, 28), dt.date(2024, 4, 3))
