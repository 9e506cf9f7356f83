"""Ground truth of DR events (synthetic utility only): true counterfactual load and effect.

The only DR module that reads ``truth/`` (tests/unit/test_truth_isolation.py): it scores
baselines, measured reductions, the response model and targeting against what really
happened, never feeds a model.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from features.tables import table_dir
from wattwise.errors import DataError


def true_event_effects(dataset_dir: Path, event_ids: list[str] | None = None) -> pd.DataFrame:
    """Per (event, customer): true counterfactual, metered and effect kWh over the event hours.

    The rebound hour after the event (also in the truth table) is left out, as baselines and
    settlement only cover the event hours.
    """
    d = table_dir(dataset_dir, "event_effects")
    if not d.exists():
        raise DataError(f"{dataset_dir} has no event_effects truth (not a synthetic utility?)")
    ev = table_dir(dataset_dir, "events")
    con = duckdb.connect()
    df = con.execute(
        f"""SELECT t.event_id, t.customer_id, any_value(t.called) AS called,
                   sum(t.kwh_counterfactual) AS true_baseline_kwh,
                   sum(t.kwh_metered) AS true_metered_kwh,
                   sum(t.kwh_counterfactual - t.kwh_metered) AS true_reduction_kwh,
                   epoch(any_value(e."end") - any_value(e.start)) / 3600 AS hours
            FROM read_parquet('{d}/**/*.parquet', hive_partitioning=false) t
            JOIN read_parquet('{ev}/**/*.parquet', hive_partitioning=false) e USING (event_id)
            WHERE t.ts >= e.start AND t.ts < e."end"
            GROUP BY t.event_id, t.customer_id"""
    ).fetchdf()
    if event_ids is not None:
        df = df[df.event_id.isin(event_ids)]
    df["true_reduction_kw"] = df.true_reduction_kwh / df.hours
    return df.reset_index(drop=True)


def true_hourly_counterfactual(dataset_dir: Path) -> pd.DataFrame:
    """Per (event, customer, UTC hour start): true counterfactual kWh in the event hours."""
    d = table_dir(dataset_dir, "event_effects")
    ev = table_dir(dataset_dir, "events")
    if not d.exists():
        raise DataError(f"{dataset_dir} has no event_effects truth (not a synthetic utility?)")
    con = duckdb.connect()
    return con.execute(
        f"""SELECT t.event_id, t.customer_id,
                   (epoch(date_trunc('hour', t.ts)) - epoch(e.start))::BIGINT // 3600 AS hour_in_event,
                   sum(t.kwh_counterfactual) AS cf_kwh
            FROM read_parquet('{d}/**/*.parquet', hive_partitioning=false) t
            JOIN read_parquet('{ev}/**/*.parquet', hive_partitioning=false) e USING (event_id)
            WHERE t.ts >= e.start AND t.ts < e."end"
            GROUP BY ALL"""
    ).fetchdf()


def truth_long_frame(dataset_dir: Path, long: pd.DataFrame, starts: dict[str, int]) -> pd.DataFrame:
    """Replace ``actual`` of an event long frame (day = event_id) by the true counterfactual."""
    cf = true_hourly_counterfactual(dataset_dir)
    out = long.assign(hour_in_event=long.hour - long.day.map(starts)).drop(columns="actual")
    out = out.merge(
        cf.rename(columns={"event_id": "day", "cf_kwh": "actual"}),
        on=["day", "customer_id", "hour_in_event"],
        how="inner",
    )
    return out.drop(columns="hour_in_event")


def has_truth(dataset_dir: Path) -> bool:
    """Whether the dataset carries DR ground truth (the synthetic utility does)."""
    return table_dir(dataset_dir, "event_effects").exists()
