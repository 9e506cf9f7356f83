"""Labels come from observable tables and mean what they say."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from features import labels
from features.synth.generate import GenerateSummary
from features.tables import read_table


def test_churn_labels_and_as_of(tiny_world: GenerateSummary) -> None:
    root = tiny_world.out_dir
    all_rows = labels.churn(root)
    assert len(all_rows) == read_table(root, "churn_labels").num_rows
    cut = date(2024, 8, 1)
    some = labels.churn(root, as_of=cut)
    assert 0 < len(some) < len(all_rows)
    assert (some.event_timestamp + timedelta(days=90) <= pd.Timestamp(cut, tz="UTC")).all()


def test_propensity_labels_follow_enrollments_and_offers(tiny_world: GenerateSummary) -> None:
    root = tiny_world.out_dir
    df = labels.propensity(root)
    enr = read_table(root, "enrollments").to_pandas()
    off = read_table(root, "offers").to_pandas()
    p = "paperless"
    joined = enr[enr.program == p].merge(df, on="customer_id")
    s, t = joined.event_timestamp, joined.enrolled_at
    pos = joined[(t >= s) & (t <= s + pd.Timedelta(days=90))]
    assert len(pos) > 0 and pos[f"enrolled_{p}"].eq(True).all()
    already = joined[(t < s) & joined.ended_at.isna()]
    assert already[f"enrolled_{p}"].isna().all()
    # offered in the month after the snapshot
    o = off[off.program == p].merge(df, on="customer_id")
    hit = o[
        (o.sent_at >= o.event_timestamp) & (o.sent_at < o.event_timestamp + pd.DateOffset(months=1))
    ]
    assert len(hit) > 0 and hit[f"offered_{p}"].all()
    assert df[f"offered_{p}"].mean() < 0.2  # offers go to a small random share


def test_dr_response_rows_are_called_participants(tiny_world: GenerateSummary) -> None:
    root = tiny_world.out_dir
    df = labels.dr_response(root)
    parts = read_table(root, "event_participants").to_pandas()
    called = parts[parts.called]
    assert len(df) == len(called)
    assert (df.event_timestamp < df.event_start).all()  # known at notification, before the event
