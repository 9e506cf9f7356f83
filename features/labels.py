"""Labels from the canonical tables, one builder per model kind, as entity rows for Feast.

Each builder is a :data:`features.services.LabelBuilder`; the model kind that uses it names
it (``training.kinds``). Each builder returns ``(key, event_timestamp, label columns...)``: the timestamp is the
moment of prediction, so the point-in-time join gives exactly what was known then. Labels
come only from observable tables (never ``truth/``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from features.schema import PROGRAMS
from features.tables import table_dir
from wattwise.errors import DataError

HORIZON_DAYS = 90


def _glob(dataset_dir: Path, name: str) -> str:
    d = table_dir(dataset_dir, name)
    if not d.exists():
        raise DataError(f"{dataset_dir.name} has no {name} table, needed for these labels")
    return f"read_parquet('{d}/**/*.parquet', hive_partitioning=false, union_by_name=true)"


def _as_of_filter(as_of: date | None, horizon_days: int, col: str = "snapshot") -> str:
    """Only labels fully observed by ``as_of`` (the horizon has ended)."""
    if as_of is None:
        return "true"
    return f"{col} + interval ({horizon_days}) day <= timestamptz '{as_of.isoformat()} 00:00:00+00'"


def churn(dataset_dir: Path, as_of: date | None = None) -> pd.DataFrame:
    """Churn labels: left within the horizon after each snapshot (from ``churn_labels``)."""
    con = duckdb.connect()
    return con.execute(
        f"""select customer_id, snapshot as event_timestamp, churned
            from {_glob(dataset_dir, "churn_labels")}
            where {_as_of_filter(as_of, HORIZON_DAYS)}
            order by event_timestamp, customer_id"""
    ).fetchdf()


def propensity(dataset_dir: Path, as_of: date | None = None) -> pd.DataFrame:
    """Per customer and monthly snapshot, for each program: enrolled within 90 days, offered.

    ``enrolled_<p>`` is null where the customer was already enrolled before the snapshot (as
    the ``programs`` features see it: ``enrolled_at < snapshot``), true for an enrolment from
    the snapshot to 90 days after it, false otherwise, also for a customer with no enrolment
    in any program (an earlier version left those null: rows were kept only for customers who
    enrolled somewhere, some time, so the row set itself told the future).
    ``offered_<p>`` says whether an offer was sent in the month after the snapshot (the
    treatment whose effect uplift models estimate).
    """
    con = duckdb.connect()
    cols = []
    for p in PROGRAMS:
        cols.append(
            f"""case when coalesce(bool_or(e.program = '{p}' and e.enrolled_at < s.snapshot
                         and (e.ended_at is null or e.ended_at > s.snapshot)), false) then null
                     else coalesce(bool_or(e.program = '{p}' and e.enrolled_at >= s.snapshot
                         and e.enrolled_at <= s.snapshot + interval ({HORIZON_DAYS}) day), false)
                end as enrolled_{p}"""
        )
    offers = ", ".join(
        f"bool_or(o.program = '{p}') filter (where o.program is not null) as offered_{p}"
        for p in PROGRAMS
    )
    df = con.execute(
        f"""
        with snaps as (
          select distinct snapshot from {_glob(dataset_dir, "churn_labels")}
          where {_as_of_filter(as_of, HORIZON_DAYS)}),
        pop as (
          select c.customer_id, s.snapshot from {_glob(dataset_dir, "customers")} c, snaps s
          where (c.tenure_start is null or c.tenure_start < s.snapshot)
            and (c.move_out is null or c.move_out > s.snapshot)),
        lab as (
          select s.customer_id, s.snapshot, {", ".join(cols)}
          from pop s left join {_glob(dataset_dir, "enrollments")} e using (customer_id)
          group by all),
        off as (
          select s.customer_id, s.snapshot, {offers}
          from pop s left join {_glob(dataset_dir, "offers")} o
            on o.customer_id = s.customer_id and o.sent_at >= s.snapshot
           and o.sent_at < s.snapshot + interval 1 month
          group by all)
        select lab.customer_id, lab.snapshot as event_timestamp,
               lab.* exclude (customer_id, snapshot), off.* exclude (customer_id, snapshot)
        from lab join off using (customer_id, snapshot)
        order by event_timestamp, customer_id
        """
    ).fetchdf()
    for p in PROGRAMS:
        df[f"offered_{p}"] = df[f"offered_{p}"].fillna(False).astype(bool)
    return df


def disaggregation(dataset_dir: Path, as_of: date | None = None) -> pd.DataFrame:
    """Meters at each snapshot of the feature tables (targets come from sub-metered data)."""
    import pyarrow.parquet as pq

    f = dataset_dir / "features" / "windows.parquet"
    if not f.exists():
        raise DataError(f"no windows feature table at {f}: run `wattwise features build`")
    df = pq.read_table(f, columns=["meter_id", "event_timestamp"]).to_pandas()
    if as_of is not None:
        df = df[df.event_timestamp <= pd.Timestamp(as_of, tz="UTC")]
    return df.sort_values(["event_timestamp", "meter_id"]).reset_index(drop=True)


def dr_response(dataset_dir: Path, as_of: date | None = None) -> pd.DataFrame:
    """Called DR participants at notification time (measured reductions come from settlement)."""
    con = duckdb.connect()
    cut = "true" if as_of is None else f"e.\"end\" <= timestamptz '{as_of.isoformat()} 00:00:00+00'"
    return con.execute(
        f"""select p.customer_id, e.notified_at as event_timestamp, e.event_id,
                   e.start as event_start, e."end" as event_end, e.incentive_per_kwh
            from {_glob(dataset_dir, "event_participants")} p
            join {_glob(dataset_dir, "events")} e using (event_id)
            where p.called and e.kind = 'dr' and {cut}
            order by event_timestamp, customer_id"""
    ).fetchdf()
