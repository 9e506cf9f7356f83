"""Scores against the synthetic utility's ground truth: the best achievable answer.

This is the one place in ``training`` that reads ``truth/`` (a test allows only modules
named ``*oracle*``); it is used for evaluation, never as a model input.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def _truth(dataset_dir: Path, name: str) -> Path | None:
    d = dataset_dir / "truth" / name
    return d if d.exists() else None


def churn_oracle_probability(dataset_dir: Path, rows: pd.DataFrame) -> np.ndarray | None:
    """The stored true 90-day churn probability of each row (None if there is no truth)."""
    d = _truth(dataset_dir, "churn_probability")
    if d is None or rows.empty:
        return None
    con = duckdb.connect()
    con.register("rows_", rows[["customer_id", "event_timestamp"]].assign(__i=np.arange(len(rows))))
    df = con.execute(
        f"""select r.__i, t.p_churn_90d as p from rows_ r
            left join read_parquet('{d}/*.parquet') t
              on t.customer_id = r.customer_id and t.snapshot = r.event_timestamp
            order by r.__i"""
    ).fetchdf()
    return df.p.to_numpy(dtype=float)


def churn_oracle_auc(dataset_dir: Path, rows: pd.DataFrame, label: str) -> float | None:
    """ROC-AUC of the stored true churn probabilities on the same rows (None if no truth)."""
    p = churn_oracle_probability(dataset_dir, rows)
    y = rows[label].astype(float).to_numpy()
    if p is None or not np.isfinite(p).all() or len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def true_uplift(dataset_dir: Path, rows: pd.DataFrame, program: str) -> np.ndarray | None:
    """True offer effect (p_offer - p_no_offer) per row for a program (None if no truth)."""
    d = _truth(dataset_dir, "enrollment_probability")
    if d is None or rows.empty:
        return None
    con = duckdb.connect()
    con.register("rows_", rows[["customer_id", "event_timestamp"]].assign(__i=np.arange(len(rows))))
    df = con.execute(
        f"""select r.__i, t.p_offer - t.p_no_offer as tau, t.p_offer, t.p_no_offer from rows_ r
            left join read_parquet('{d}/*.parquet') t
              on t.customer_id = r.customer_id and t.snapshot = r.event_timestamp
             and t.program = '{program}'
            order by r.__i"""
    ).fetchdf()
    return df.tau.to_numpy(dtype=float)


def true_enrollment_probability(
    dataset_dir: Path, rows: pd.DataFrame, program: str
) -> np.ndarray | None:
    """True 90-day enrollment probability given the offer status actually received."""
    d = _truth(dataset_dir, "enrollment_probability")
    if d is None or rows.empty:
        return None
    con = duckdb.connect()
    con.register(
        "rows_",
        rows[["customer_id", "event_timestamp", f"offered_{program}"]]
        .rename(columns={f"offered_{program}": "offered"})
        .assign(__i=np.arange(len(rows))),
    )
    df = con.execute(
        f"""select r.__i, case when r.offered then t.p_offer else t.p_no_offer end as p
            from rows_ r left join read_parquet('{d}/*.parquet') t
              on t.customer_id = r.customer_id and t.snapshot = r.event_timestamp
             and t.program = '{program}'
            order by r.__i"""
    ).fetchdf()
    return df.p.to_numpy(dtype=float)
