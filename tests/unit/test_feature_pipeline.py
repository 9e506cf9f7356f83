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

    # a year's web logins per 30 days of history (since the log's start or tenure, if later)
    cust = read_table(d, "customers").to_pandas().set_index("customer_id")
    y = contacts[(contacts.ts < snap) & (contacts.ts >= snap - pd.Timedelta(days=365))]
    web = y[(y.kind == "login") & (y.channel == "web")].groupby("customer_id").size()
    start = (
        pd.to_datetime(cust.tenure_start)
        .dt.tz_localize("UTC")
        .clip(lower=contacts.ts.min().normalize())
    )
    hist = (snap - start.reindex(e.index)).dt.days.clip(upper=365)
    want = (web.reindex(e.index).fillna(0) * 30.0 / hist).where(hist >= 30)
    got_rate = e.eng_web_logins_per_30d_365d
    assert got_rate.notna().sum() > 50
    assert np.allclose(got_rate.to_numpy(float), want.to_numpy(float), equal_nan=True)

    offers = read_table(d, "offers").to_pandas()
    o = offers[(offers.program == "paperless") & (offers.sent_at < snap)]
    o = o[o.sent_at >= snap - pd.Timedelta(days=365)]
    last = o.groupby("customer_id").sent_at.max()
    want_days = (snap.normalize() - last.dt.normalize()).dt.days.reindex(e.index)
    pf = pd.read_parquet(built / "programs.parquet")
    pf = pf[pf.event_timestamp == snap].set_index("customer_id").reindex(e.index)
    got_days = pf.prog_days_since_offer_paperless.astype(float)
    assert got_days.notna().sum() > 0
    assert np.allclose(got_days.to_numpy(), want_days.to_numpy(float), equal_nan=True)


def test_sources_without_reads_still_build_what_they_can(
    tiny_world: GenerateSummary, tmp_path: Path
) -> None:
    src = tmp_path / "noreads"
    shutil.copytree(
        tiny_world.out_dir, src, ignore=shutil.ignore_patterns("truth", "interval_reads")
    )
    s = build_features(src, tmp_path / "out", groups=["usage", "billing", "engagement"])
    assert "usage" in s.skipped and s.rows["billing"] > 0 and s.rows["engagement"] > 0


def test_next_bill_shock_of_last_year(tiny_world: GenerateSummary, tmp_path: Path) -> None:
    """The shock a year earlier of the bill for the month now starting, and of the next one:
    with the world's bills repeated (doubled) a year before, at a 2024-10-01 snapshot they are
    October's and November's 2024 shocks (Oct / mean Jul-Sep, Nov / mean Aug-Oct)."""
    src = tmp_path / "twoyears"
    shutil.copytree(
        tiny_world.out_dir, src, ignore=shutil.ignore_patterns("truth", "interval_reads")
    )
    bills = read_table(src, "bills")
    df = bills.to_pandas()
    early = df.assign(
        bill_month=(pd.to_datetime(df.bill_month) - pd.DateOffset(years=1)).dt.date,
        amount=df.amount * 2,
    )
    write_table(src, "bills", pa.Table.from_pandas(pd.concat([early, df]), schema=bills.schema))
    snap = dt.date(2024, 10, 1)
    build_features(src, tmp_path / "out", groups=["billing"], snapshots=[snap])
    got = pd.read_parquet(tmp_path / "out" / "billing.parquet").set_index("customer_id")
    a = df.pivot_table(index="customer_id", columns="bill_month", values="amount")
    a.columns = [c.month for c in a.columns]  # 2024 only
    want1 = a[10] / a[[7, 8, 9]].mean(axis=1, skipna=False)
    want2 = a[11] / a[[8, 9, 10]].mean(axis=1, skipna=False)
    ids = got.index.intersection(want1.dropna().index).intersection(want2.dropna().index)
    assert len(ids) > 50
    assert np.allclose(got.loc[ids, "bill_next_shock_last_year"], want1[ids], rtol=1e-5)
    assert np.allclose(got.loc[ids, "bill_next2_shock_last_year"], want2[ids], rtol=1e-5)


REFERENCE_MDAY = """
CREATE OR REPLACE TEMP TABLE ref_mday AS
WITH x AS (
  SELECT m.idx, m.imin, r.kwh, r.kwh_export, {off} AS off, epoch_us(r.ts) AS us
  FROM src_interval_reads r JOIN m USING (meter_id)
), y AS (SELECT *, us + off AS lu, ((us + off) % {day}) // {hour} AS hr,
                ((us + off) % {day}) // 60000000 AS mi FROM x)
SELECT idx, any_value(imin) AS imin, (lu // {day})::INTEGER AS d,
  count(kwh) AS n, sum(kwh) AS kwh, max(kwh) AS kwh_max, sum(kwh_export) AS kexp,
  min(off) AS off_min,
  count(kwh) FILTER (WHERE hr BETWEEN 1 AND 4) AS n_night,
  sum(kwh) FILTER (WHERE hr BETWEEN 1 AND 4) AS knight,
  sum(kwh) FILTER (WHERE hr BETWEEN 16 AND 20 AND (lu // {day} + 4) % 7 NOT IN (0, 6)) AS kpeak,
  sum(kwh) FILTER (WHERE hr BETWEEN 17 AND 19) AS keve,
  bit_or(CASE WHEN kwh * 60.0 / imin > {ev} AND hr >= 22
         THEN (1::UBIGINT << least(63, (mi - 1320) // imin)::INTEGER) END) AS me,
  bit_or(CASE WHEN kwh * 60.0 / imin > {ev} AND hr < 6
         THEN (1::UBIGINT << least(63, (mi + 120) // imin)::INTEGER) END) AS mm
FROM y GROUP BY idx, d
"""

REFERENCE_CDAY = """
CREATE OR REPLACE TEMP TABLE ref_cday AS
WITH c AS (
  SELECT m.customer_id, d.d, sum(n) AS n, sum(d.kwh) AS kwh,
    max(kwh_max * 60.0 / d.imin) AS kw_max, sum(kexp) AS kexp, sum(kpeak) AS kpeak,
    sum(keve) AS keve, sum(knight) AS knight, sum(n_night * d.imin / 60.0) AS night_h,
    sum(n * d.imin / 60.0) AS hours, bit_or(me) AS me, bit_or(mm) AS mm,
    min(n * d.imin / 1440.0) AS cover, (d.d + 1)::BIGINT * {day} - min(off_min) AS day_end
  FROM ref_mday d JOIN m USING (idx) GROUP BY m.customer_id, d.d
), w AS (
  SELECT c.*, cover >= {share} AS complete,
    CASE WHEN lag(d) OVER w = d - 1 THEN (mm | coalesce(lag(me) OVER w, 0::UBIGINT))
         ELSE mm END AS night_mask
  FROM c WINDOW w AS (PARTITION BY customer_id ORDER BY d)
)
SELECT w.*, s.si AS p FROM w ASOF LEFT JOIN snaps s ON w.day_end <= s.S
"""

REFERENCE_CHOUR = """
CREATE OR REPLACE TEMP TABLE ref_chour AS
WITH x AS (
  SELECT m.customer_id, m.imin, r.kwh, {off} AS off, epoch_us(r.ts) AS us
  FROM src_interval_reads r JOIN m USING (meter_id)
), z AS (
  SELECT customer_id, imin, kwh, (((us + off) % {day}) // {hour})::INTEGER AS hr,
    ((us + off) // {day} + 4) % 7 IN (0, 6) AS weekend,
    ((us + off) // {day} + 1) * {day} - off AS de
  FROM x
), p AS (
  SELECT z.*, (SELECT min(si) FROM snaps s WHERE z.de <= s.S) AS p FROM z
  WHERE de > (SELECT min(S) FROM snaps) - 31 * {day}
)
SELECT customer_id, p, weekend, hr, sum(kwh) AS kwh,
  sum(imin) FILTER (WHERE kwh IS NOT NULL) / 60.0 AS hours
FROM p WHERE p IS NOT NULL GROUP BY ALL
"""


def test_numpy_heavy_pass_matches_plain_sql(tiny_world: GenerateSummary) -> None:
    """The per-file numpy scan (2 worker processes) gives the aggregates of plain row SQL."""
    import duckdb

    from features.pipeline.config import load_feature_config
    from features.pipeline.heavy import build_meter_table, customer_days, scan_context
    from features.pipeline.scan import reads_files, scan_reads
    from features.pipeline.sources import (
        DAY_US,
        HOUR_US,
        default_snapshots,
        offset_sql,
        register_sources,
        to_us,
        zone_segments,
    )

    cfg = load_feature_config()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    register_sources(con, tiny_world.out_dir)
    build_meter_table(con)
    lo, hi = con.execute(
        "SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM src_interval_reads"
    ).fetchone()
    first = dt.date(1970, 1, 1) + dt.timedelta(microseconds=lo)
    last = dt.date(1970, 1, 1) + dt.timedelta(microseconds=hi)
    snaps = default_snapshots(first, last)
    con.execute("CREATE TABLE snaps (si INTEGER, S BIGINT)")
    con.executemany(
        "INSERT INTO snaps VALUES (?, ?)", [(i + 1, to_us(d)) for i, d in enumerate(snaps)]
    )
    tzs = [r[0] for r in con.execute("SELECT DISTINCT tz FROM m").fetchall()]
    zones = {tz: zone_segments(tz, lo - DAY_US, hi + DAY_US) for tz in tzs}
    files = reads_files(tiny_world.out_dir / "interval_reads")
    day, hour, _ = scan_reads(files, scan_context(con, cfg, zones), 2, force_pool=True)
    meters = con.execute("SELECT customer_id, imin FROM m ORDER BY idx").arrow()
    meters = meters.read_all() if hasattr(meters, "read_all") else meters
    s_us = np.array([to_us(d) for d in snaps])
    cday, _ = customer_days(day, meters, s_us, cfg.complete_day_share)

    off = offset_sql(zones, "epoch_us(r.ts)", "m.tz")
    fmt = {"off": off, "day": DAY_US, "hour": HOUR_US, "ev": cfg.ev_kw}
    con.execute(REFERENCE_MDAY.format(**fmt))
    con.execute(REFERENCE_CDAY.format(day=DAY_US, share=cfg.complete_day_share))
    con.execute(REFERENCE_CHOUR.format(**fmt))
    ref = con.execute("SELECT * FROM ref_cday ORDER BY customer_id, d").df()
    got = cday.to_pandas().sort_values(["customer_id", "d"]).reset_index(drop=True)
    assert len(got) == len(ref) > 1000
    assert (got.customer_id.to_numpy() == ref.customer_id.to_numpy()).all()
    for c in ("d", "n", "day_end", "complete", "p"):
        assert (got[c].fillna(-1).to_numpy() == ref[c].fillna(-1).to_numpy()).all(), c
    for c in ("me", "mm", "night_mask"):
        g, r = got[c].astype("Float64").fillna(-1), ref[c].astype("Float64").fillna(-1)
        assert (g.to_numpy() == r.to_numpy()).all(), c
    for c in ("kwh", "kw_max", "kexp", "kpeak", "keve", "knight", "night_h", "hours", "cover"):
        g, r = got[c].astype(float), ref[c].astype(float)
        assert (g.isna() == r.isna()).all(), c
        np.testing.assert_allclose(g.fillna(0), r.fillna(0), rtol=1e-9, err_msg=c)
    assert got.night_mask.notna().sum() > 0 and got.kexp.notna().sum() > 0

    con.register("scan_hour", hour)
    got_h = con.execute(
        """SELECT m.customer_id, h.p, h.weekend, h.hr,
          CASE WHEN sum(h.cnt) > 0 THEN sum(h.kwh) END AS kwh,
          CASE WHEN sum(h.cnt) > 0 THEN sum(h.cnt * m.imin) / 60.0 END AS hours
        FROM scan_hour h JOIN m USING (idx) GROUP BY ALL ORDER BY ALL"""
    ).df()
    ref_h = con.execute("SELECT * FROM ref_chour ORDER BY ALL").df()
    assert len(got_h) == len(ref_h) > 1000
    for c in ("customer_id", "p", "weekend", "hr"):
        assert (got_h[c].to_numpy() == ref_h[c].to_numpy()).all(), c
    for c in ("kwh", "hours"):
        np.testing.assert_allclose(got_h[c].astype(float), ref_h[c].astype(float), rtol=1e-9)
