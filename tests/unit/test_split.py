"""The time split: later snapshots for validation and test, disjoint customers, label embargo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import SplitConfig
from training.data import split
from wattwise.errors import DataError


def panel(customers: int = 400, months: int = 11) -> pd.DataFrame:
    snaps = pd.date_range("2024-01-01", periods=months, freq="MS", tz="UTC")
    return pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i:04d}" for i in range(customers)], months),
            "event_timestamp": np.tile(snaps, customers),
        }
    )


def test_customer_disjoint_time_split_with_embargo() -> None:
    df = panel()
    y = np.zeros(len(df))
    cfg = SplitConfig(valid_snapshots=2, test_snapshots=2, customer_disjoint=True, embargo_days=90)
    sp = split(df, y, cfg, seed=7)
    ts, cid = df.event_timestamp, df.customer_id
    test_from = ts[sp.test].min()
    assert test_from == pd.Timestamp("2024-10-01", tz="UTC")
    # training labels ("leaves within 90 days") were all known at the first test snapshot
    assert ts[sp.train].max() <= test_from - pd.Timedelta(days=90)
    assert ts[sp.valid].min() > ts[sp.train].max()
    parts = [set(cid[m]) for m in (sp.train, sp.valid, sp.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert "embargo" in sp.description and "customer-disjoint" in sp.description
    # without the embargo, training runs up to the validation snapshots
    plain = split(df, y, SplitConfig(valid_snapshots=2, test_snapshots=2), seed=7)
    assert ts[plain.train].max() == pd.Timestamp("2024-07-01", tz="UTC")
    assert set(cid[plain.train]) == set(cid[plain.test])


def test_an_embargo_longer_than_the_data_is_a_clear_error() -> None:
    df = panel(months=5)
    cfg = SplitConfig(valid_snapshots=1, test_snapshots=2, embargo_days=200)
    with pytest.raises(DataError, match="embargo"):
        split(df, np.zeros(len(df)), cfg, seed=1)


def test_validation_customers_held_out_and_every_customer_tested() -> None:
    df = panel()
    y = np.zeros(len(df))
    cfg = SplitConfig(
        valid_snapshots=2, test_snapshots=2, customer_disjoint="valid", embargo_days=90
    )
    sp = split(df, y, cfg, seed=7)
    ts, cid = df.event_timestamp, df.customer_id
    train, valid, test = (set(cid[m]) for m in (sp.train, sp.valid, sp.test))
    assert not (train & valid) and train and valid
    assert test == set(cid)  # every customer at the test snapshots
    assert 0.05 < len(valid) / len(test) < 0.3
    assert ts[sp.train].max() <= ts[sp.test].min() - pd.Timedelta(days=90)
    assert "validation customers held out" in sp.description
    with pytest.raises(ValueError):
        SplitConfig(customer_disjoint="test")
