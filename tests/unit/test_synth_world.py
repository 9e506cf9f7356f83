"""The synthetic utility: determinism, validity, realism and ground truth."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.schema import CANONICAL_TABLES, IMPORT_TABLES, TRUTH_TABLES
from features.synth.config import load_world_config
from features.synth.generate import GenerateSummary, generate
from features.tables import read_table, validate
from tests.synth_stats import daily_stats

SMALL = {"customers": 40, "days": 45, "chunk_customers": 20, "seed": 3}


def _digest(root: Path) -> dict[str, list]:
    out = {}
    for t in (*CANONICAL_TABLES, *TRUTH_TABLES):
        d = root / t.relpath()
        if d.exists():
            tab = read_table(root, t.name)
            keys = [(c, "ascending") for c in tab.column_names if c not in ("reason",)]
            out[t.name] = tab.sort_by(keys).to_pylist()
    return out


def test_same_config_and_seed_give_identical_tables(tmp_path: Path) -> None:
    a = generate(load_world_config(**SMALL, workers=1), tmp_path / "a")
    b = generate(load_world_config(**SMALL, workers=2), tmp_path / "b")
    assert a.readings == b.readings > 0
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da.keys() == db.keys()
    for name in da:
        assert da[name] == db[name], name


def test_other_seed_gives_other_data(tmp_path: Path) -> None:
    generate(load_world_config(**SMALL), tmp_path / "a")
    generate(load_world_config(**{**SMALL, "seed": 4}), tmp_path / "b")
    a = read_table(tmp_path / "a", "customers").column("floor_area_m2").to_pylist()
    b = read_table(tmp_path / "b", "customers").column("floor_area_m2").to_pylist()
    assert a != b


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    from wattwise.errors import WattwiseError

    with pytest.raises(WattwiseError, match="refusing"):
        generate(load_world_config(**SMALL), tmp_path)
    assert (tmp_path / "precious.txt").exists()


# Schema tables the synthetic utility does not write: only real-data importers do (PowerCo's
# long-form attributes; the importers' own tables such as REDD's sub-metered power). Every
# other table of the schema, canonical or truth, must be written.
NOT_SYNTHESISED = frozenset({"customer_attributes", *(t.name for t in IMPORT_TABLES)})
SCHEMA_TABLES = (*CANONICAL_TABLES, *TRUTH_TABLES, *IMPORT_TABLES)


def test_not_synthesised_names_only_schema_tables() -> None:
    unknown = NOT_SYNTHESISED - {t.name for t in SCHEMA_TABLES}
    assert not unknown, f"not tables of the schema: {sorted(unknown)}"
    assert not NOT_SYNTHESISED & {t.name for t in TRUTH_TABLES}  # truth is synthetic only


@pytest.mark.parametrize("t", SCHEMA_TABLES, ids=lambda t: t.name)
def test_generator_writes_every_table_but_the_importers(tiny_world: GenerateSummary, t) -> None:
    written = (tiny_world.out_dir / t.relpath()).is_dir()
    if t.name in NOT_SYNTHESISED:
        assert not written, f"{t.name} is written: take it out of NOT_SYNTHESISED"
        assert t.name not in tiny_world.rows
    else:
        assert written, f"the synthetic utility no longer writes {t.relpath()}/"
        assert t.name in tiny_world.rows


@pytest.mark.parametrize(
    "t",
    [t for t in CANONICAL_TABLES if t.name != "interval_reads" and t.name not in NOT_SYNTHESISED],
    ids=lambda t: t.name,
)
def test_canonical_tables_pass_validation(tiny_world: GenerateSummary, t) -> None:
    assert (tiny_world.out_dir / t.relpath()).is_dir(), f"{t.name} is not written"
    res = validate(t, read_table(tiny_world.out_dir, t.name))
    assert res.rejected.num_rows == 0, res.reasons


def test_interval_reads_are_unique_non_negative_and_aligned(tiny_world: GenerateSummary) -> None:
    con = duckdb.connect()
    glob = f"{tiny_world.out_dir}/interval_reads/*/*.parquet"
    dup, neg, misaligned, n = con.execute(
        f"""select count(*) - count(distinct (meter_id, ts)), count_if(kwh < 0),
                   count_if(epoch(ts)::bigint % 1800 <> 0), count(*)
            from read_parquet('{glob}')"""
    ).fetchone()
    assert n == tiny_world.readings and (dup, neg, misaligned) == (0, 0, 0)


def test_bad_reads_are_flagged_and_quarantined(tiny_world: GenerateSummary) -> None:
    root = tiny_world.out_dir
    bad = read_table(root, "bad_reads")
    kinds = set(bad.column("kind").to_pylist())
    assert {"gap", "spike", "negative", "duplicate"} <= kinds
    q = pq.read_table(root / "quarantine" / "interval_reads")
    reasons = set(q.column("reason").to_pylist())
    assert reasons == {"kwh below 0", "duplicate meter_id/ts"}
    n_neg = int(pc.sum(pc.equal(bad.column("kind"), "negative")).as_py())
    assert tiny_world.quarantined["kwh below 0"] == n_neg
    # a gap means the read is absent
    gap = bad.filter(pc.equal(bad.column("kind"), "gap")).slice(0, 50)
    con = duckdb.connect()
    con.register("gap", gap)
    hits = con.execute(
        f"select count(*) from read_parquet('{root}/interval_reads/*/*.parquet') r "
        "join gap g using (meter_id, ts)"
    ).fetchone()[0]
    assert hits == 0


def test_churned_meters_stop(tiny_world: GenerateSummary) -> None:
    con = duckdb.connect()
    root = tiny_world.out_dir
    left, late = con.execute(
        f"""with c as (select customer_id, move_out from read_parquet('{root}/customers/*.parquet')
                       where move_out is not null),
                 m as (select meter_id, customer_id from read_parquet('{root}/meters/*.parquet'))
            select (select count(*) from c),
                   count(*) from read_parquet('{root}/interval_reads/*/*.parquet') r
            join m using (meter_id) join c using (customer_id) where r.ts >= c.move_out"""
    ).fetchone()
    assert left > 0 and late == 0


def test_usage_is_realistic(tiny_world: GenerateSummary) -> None:
    # Published residential ranges: EIA RECS 2020 puts the US average at ~29 kWh/day
    # (10,791 kWh/yr), with regional means from ~20 (Pacific) to ~38 (East South Central);
    # daily load factors of homes sit around 0.2-0.5; evening peak (16-21h) takes ~25-35 %
    # of daily energy (e.g. LCL's London homes: 27.6 %).
    root = tiny_world.out_dir
    s = daily_stats(
        f"select meter_id meter, ts, kwh from read_parquet('{root}/interval_reads/*/*.parquet')",
        local_offset_hours=-8,
    )
    assert 15 <= s["mean_daily_kwh"] <= 40
    assert 0.2 <= s["load_factor"] <= 0.55
    assert 0.22 <= s["evening_peak_share"] <= 0.38
    assert s["p90_daily_kwh"] > 2 * s["p10_daily_kwh"]


def test_seasonal_shape_and_weather_sensitivity(tiny_world: GenerateSummary) -> None:
    root = tiny_world.out_dir
    con = duckdb.connect()
    df = con.execute(
        f"""with d as (
              select c.region, c.heating_fuel, c.has_ac, date_trunc('day', r.ts) dday, sum(kwh) kwh
              from read_parquet('{root}/interval_reads/*/*.parquet') r
              join read_parquet('{root}/meters/*.parquet') m using (meter_id)
              join read_parquet('{root}/customers/*.parquet') c using (customer_id)
              group by all),
            w as (select region, date_trunc('day', ts) dday, avg(temperature_c) t
                  from read_parquet('{root}/weather/*.parquet') group by all)
            select d.*, w.t from d join w using (region, dday)"""
    ).fetchdf()
    elec = df[df.heating_fuel.isin(["electric_resistance", "heat_pump"])]
    cold = elec[elec.t < 8].kwh.mean()
    mild = elec[(elec.t > 14) & (elec.t < 19)].kwh.mean()
    assert cold > 1.3 * mild  # electric heating shows in cold weather
    ac = df[df.has_ac]
    hot = ac[ac.t > 26].kwh.mean()
    assert hot > ac[(ac.t > 14) & (ac.t < 19)].kwh.mean()  # cooling shows in hot weather
    assert np.corrcoef(elec.t, elec.kwh)[0, 1] < -0.2


def test_events_reduce_load_only_for_called_customers(tiny_world: GenerateSummary) -> None:
    eff = read_table(tiny_world.out_dir, "event_effects").to_pandas()
    assert len(eff) > 0
    eff["cut"] = eff.kwh_counterfactual - eff.kwh_metered
    ev = read_table(tiny_world.out_dir, "events").to_pandas()
    eff = eff.merge(ev[["event_id", "end"]], on="event_id")
    during = eff[eff.ts < eff.end]
    assert during[during.called].cut.mean() > 0.02
    assert np.allclose(during[~during.called].cut, 0, atol=1e-5)
    assert (during.cut >= -1e-5).all()
    # participants are enrolled in demand response before the event
    parts = read_table(tiny_world.out_dir, "event_participants").to_pandas()
    enr = read_table(tiny_world.out_dir, "enrollments").to_pandas()
    dr = set(enr[enr.program == "demand_response"].customer_id)
    assert set(parts.customer_id) <= dr


def test_churn_truth_is_informative(tiny_world: GenerateSummary) -> None:
    from sklearn.metrics import roc_auc_score

    root = tiny_world.out_dir
    con = duckdb.connect()
    df = con.execute(
        f"""select l.churned, t.p_churn_90d from read_parquet('{root}/churn_labels/*.parquet') l
            join read_parquet('{root}/truth/churn_probability/*.parquet') t
            using (customer_id, snapshot)"""
    ).fetchdf()
    assert 0.01 < df.churned.mean() < 0.12
    assert roc_auc_score(df.churned, df.p_churn_90d) > 0.6


def test_churn_truth_follows_the_monthly_hazards(tiny_world: GenerateSummary) -> None:
    """For a customer still there three months on, the realised probability combines the
    hazards stored at the next snapshots (a move-out in the third month counts with the share
    of its days inside 90 days); the held one repeats the snapshot's hazard."""
    t = read_table(tiny_world.out_dir, "churn_probability").to_pandas()
    t["snapshot"] = t.snapshot.dt.tz_convert("UTC").dt.tz_localize(None)
    h = t.pivot(index="customer_id", columns="snapshot", values="hazard")
    snaps = list(h.columns)
    np.testing.assert_allclose(t.p_churn_90d_held, 1 - (1 - t.hazard) ** 3, rtol=1e-5)
    checked = 0
    for i, s in enumerate(snaps[:-4]):
        nxt = snaps[i : i + 5]
        days = np.diff(np.array(nxt, dtype="datetime64[D]")).astype(int)
        start = np.array([(d - s).days for d in nxt[:4]])
        share = np.clip((90 - start) / (days - 1), 0, 1)
        stay = h[nxt[:4]].notna().all(axis=1)
        hz = h.loc[stay, nxt[:4]].to_numpy(float)
        want = 1 - np.prod(1 - share * hz, axis=1)
        got = (
            t[t.snapshot == s]
            .set_index("customer_id")
            .loc[stay[stay].index, "p_churn_90d_realised"]
        )
        np.testing.assert_allclose(got.to_numpy(float), want, rtol=1e-4, atol=1e-6)
        checked += len(want)
    assert checked > 500


def test_churn_oracle_is_the_realised_probability_on_average(tiny_world: GenerateSummary) -> None:
    """The oracle averages the next months' events that the realised probability saw one draw
    of: the same mean (within sampling error), less spread, and between the two in ranking."""
    t = read_table(tiny_world.out_dir, "churn_probability").to_pandas()
    d = t.p_churn_90d_realised - t.p_churn_90d
    assert abs(d.mean()) < 4 * d.std() / np.sqrt(t.customer_id.nunique())
    assert t.p_churn_90d.std() < t.p_churn_90d_realised.std()
    assert (t.p_churn_90d >= t.hazard - 1e-6).all()  # the snapshot's own month is known


def test_offers_move_enrollment(tiny_world: GenerateSummary) -> None:
    t = read_table(tiny_world.out_dir, "enrollment_probability").to_pandas()
    uplift = t.p_offer - t.p_no_offer
    assert (uplift > 0).mean() > 0.7 and uplift.std() > 0  # heterogeneous, mostly positive


def test_scenarios_shift_what_they_say(tmp_path: Path) -> None:
    base = {**SMALL, "days": 120, "start": "2024-05-01"}
    generate(load_world_config(**base), tmp_path / "base")
    generate(
        load_world_config(**base, scenario="heat_wave", scenario_start="2024-07-01"),
        tmp_path / "hw",
    )
    w0 = read_table(tmp_path / "base", "weather").to_pandas()
    w1 = read_table(tmp_path / "hw", "weather").to_pandas()
    diff = w1.temperature_c - w0.temperature_c
    window = (w0.ts >= "2024-07-02") & (w0.ts < "2024-07-10")
    assert diff[window].mean() > 6 and abs(diff[w0.ts < "2024-06-29"]).max() < 1e-3
    sc = read_table(tmp_path / "hw", "scenarios").to_pylist()
    assert sc[0]["scenario"] == "heat_wave"
    generate(load_world_config(**base, scenario="broken_meters"), tmp_path / "bm")
    kinds = read_table(tmp_path / "bm", "bad_reads").column("kind").to_pylist()
    assert "broken_meter" in kinds
