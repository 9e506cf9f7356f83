"""Feature pipeline: contract (columns, types), point-in-time correctness, churn, spot checks."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.pipeline import GROUPS, build_features
from features.synth.generate import GenerateSummary
from features.tables import read_table, write_table

S = dt.date(2024, 7, 1)
SNAPS = [dt.date(2024, 5, 1), S]
FIT_END = dt.date(2024, 6, 1)


@pytest.fixture(scope="module")
def built(tiny_world: GenerateSummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feat")
    build_features(tiny_world.out_dir, out)
    return out


@pytest.fixture(scope="module")
def pit_pair(
    tiny_world: GenerateSummary, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Features at S from the original data and from a copy altered only at or after S."""
    base = tmp_path_factory.mktemp("pit")
    src = base / "copy"
    shutil.copytree(tiny_world.out_dir, src, ignore=shutil.ignore_patterns("truth"))
    s_ts = pa.scalar(pd.Timestamp(S, tz="UTC"), pa.timestamp("us", tz="UTC"))
    reads = read_table(src, "interval_reads")
    after = pc.greater_equal(reads.column("ts"), s_ts)
    kwh = pc.if_else(
        after, pc.multiply(reads.column("kwh"), pa.scalar(7.0, pa.float32())), reads.column("kwh")
    )
    write_table(src, "interval_reads", reads.set_column(2, "kwh", kwh))
    bills = read_table(src, "bills")
    late = pc.greater_equal(bills.column("bill_month"), pa.scalar(S, pa.date32()))
    amt = pc.if_else(late, pa.scalar(9999.0, pa.float32()), bills.column("amount"))
    write_table(src, "bills", bills.set_column(bills.column_names.index("amount"), "amount", amt))
    contacts = read_table(src, "contacts")
    extra = contacts.slice(0, 50)
    ts = pa.array([pd.Timestamp(S, tz="UTC")] * 50, pa.timestamp("us", tz="UTC"))
    extra = extra.set_column(1, contacts.schema.field("ts"), ts)
    write_table(src, "contacts", pa.concat_tables([contacts, extra]))
    a = build_features(tiny_world.out_dir, base / "a", snapshots=SNAPS, segment_fit_end=FIT_END)
    b = build_features(src, base / "b", snapshots=SNAPS, segment_fit_end=FIT_END)
    return a.out_dir, b.out_dir


def test_every_group_has_the_contract_columns(built: Path) -> None:
    names: list[str] = []
    for g, spec in GROUPS.items():
        t = pq.read_table(built / f"{g}.parquet")
        assert t.column_names == [
            spec.entity,
            "event_timestamp",
            "created_timestamp",
            *spec.feature_names,
        ]
        assert t.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        assert t.schema.field(spec.entity).type == pa.string()
        assert t.num_rows > 0
        names += spec.feature_names
    assert len(names) == len(set(names)), "feature names must be unique across groups"
    win = pq.read_table(built / "windows.parquet")
    assert win.schema.field("win_kwh").type == pa.list_(pa.float32())
    lengths = pc.list_value_length(win.column("win_kwh")).to_numpy()
    assert (lengths == 7 * 48).all()


def test_features_at_a_snapshot_ignore_everything_after_it(pit_pair: tuple[Path, Path]) -> None:
    a_dir, b_dir = pit_pair
    for g in GROUPS:
        a = pd.read_parquet(a_dir / f"{g}.parquet")
        b = pd.read_parquet(b_dir / f"{g}.parquet")
        key = GROUPS[g].entity
        a = (
            a[a.event_timestamp == pd.Timestamp(S, tz="UTC")]
            .sort_values(key)
            .reset_index(drop=True)
        )
        b = (
            b[b.event_timestamp == pd.Timestamp(S, tz="UTC")]
            .sort_values(key)
            .reset_index(drop=True)
        )
        assert len(a) > 0
        if g == "windows":
            assert np.allclose(np.stack(a.win_kwh), np.stack(b.win_kwh), equal_nan=True)
            continue
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=g)


def test_churned_customers_have_no_rows_on_or_after_move_out(
    built: Path, tiny_world: GenerateSummary
) -> None:
    cust = read_table(tiny_world.out_dir, "customers").to_pandas()
    gone = cust.dropna(subset=["move_out"])[["customer_id", "move_out"]]
    assert len(gone) > 0
    for g in ("usage", "billing", "engagement"):
        f = pd.read_parquet(built / f"{g}.parquet", columns=["customer_id", "event_timestamp"])
        j = f.merge(gone, on="customer_id")
        assert (j.event_timestamp.dt.date < j.move_out).all(), g


def test_usage_billing_and_contacts_match_pandas(built: Path, tiny_world: GenerateSummary) -> None:
    d = tiny_world.out_dir
    meters = read_table(d, "meters").to_pandas()
    m = meters.iloc[3]
    reads = read_table(d, "interval_reads").to_pandas()
    r = reads[reads.meter_id == m.meter_id].copy()
    r["local"] = r.ts.dt.tz_convert(m.timezone)
    r["day"] = r.local.dt.date
    daily = r.groupby("day").agg(kwh=("kwh", "sum"), n=("kwh", "count"))
    day_end = pd.to_datetime(pd.Series(daily.index) + dt.timedelta(days=1)).dt.tz_localize(
        m.timezone
    )
    snap = pd.Timestamp(dt.date(2024, 10, 1), tz="UTC")
    keep = ((day_end <= snap) & (day_end > snap - pd.Timedelta(days=30))).to_numpy()
    keep &= (daily.n >= 0.9 * 48).to_numpy()
    expected = daily.kwh[keep].mean()
    u = pd.read_parquet(built / "usage.parquet")
    got = u[(u.customer_id == m.customer_id) & (u.event_timestamp == snap)]
    assert got.usage_mean_daily_kwh_30d.iloc[0] == pytest.approx(expected, rel=1e-5)

    bills = read_table(d, "bills").to_pandas()
    b = bills[(bills.customer_id == m.customer_id) & (bills.bill_month < dt.date(2024, 9, 2))]
    bf = pd.read_parquet(built / "billing.parquet")
    got_b = bf[(bf.customer_id == m.customer_id) & (bf.event_timestamp == snap)]
    known = b[b.bill_month <= dt.date(2024, 9, 1)].sort_values("bill_month").iloc[-1]
    assert got_b.bill_last_amount.iloc[0] == pytest.approx(known.amount, rel=1e-6)

    contacts = read_table(d, "contacts").to_pandas()
    c = contacts[(contacts.ts < snap) & (contacts.ts >= snap - pd.Timedelta(days=90))]
    counts = c.groupby("customer_id").size()
    e = pd.read_parquet(built / "engagement.parquet")
    e = e[e.event_timestamp == snap].set_index("customer_id")
    assert (e.eng_contacts_90d == counts.reindex(e.index).fillna(0)).all()


def test_sources_without_reads_still_build_what_they_can(
    tiny_world: GenerateSummary, tmp_path: Path
) -> None:
    src = tmp_path / "noreads"
    shutil.copytree(
        tiny_world.out_dir, src, ignore=shutil.ignore_patterns("truth", "interval_reads")
    )
    s = build_features(src, tmp_path / "out", groups=["usage", "billing", "engagement"])
    assert "usage" in s.skipped and s.rows["billing"] > 0 and s.rows["engagement"] > 0
