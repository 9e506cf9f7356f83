"""Scores against the synthetic utility's ground truth: the best achievable answer.

This is the one place in ``training`` that reads ``truth/`` (a test allows only modules
named ``*oracle*``); it is used for evaluation, never as a model input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def _truth(dataset_dir: Path, name: str) -> Path | None:
    d = dataset_dir / "truth" / name
    return d if d.exists() else None


def churn_oracle_probability(
    dataset_dir: Path, rows: pd.DataFrame, column: str = "p_churn_90d"
) -> np.ndarray | None:
    """The stored true 90-day churn probability of each row (None if there is no truth).

    ``p_churn_90d`` is the oracle: the probability given the world's state at the snapshot
    (the window's events averaged over). ``p_churn_90d_realised`` knows those events as they
    turned out (an upper bound); ``p_churn_90d_held`` holds the snapshot's drivers (not a
    bound). Older worlds lack the last two: None.
    """
    d = _truth(dataset_dir, "churn_probability")
    if d is None or rows.empty:
        return None
    con = duckdb.connect()
    names = {
        r[0]
        for r in con.execute(f"describe select * from read_parquet('{d}/*.parquet')").fetchall()
    }
    if column not in names:
        return None
    con.register("rows_", rows[["customer_id", "event_timestamp"]].assign(__i=np.arange(len(rows))))
    df = con.execute(
        f"""select r.__i, t.{column} as p from rows_ r
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


@dataclass
class EnrollmentOracle:
    """True 90-day enrolment probabilities of some label rows of one program (all rows).

    ``p`` is for the offer actually received; ``eligible`` marks rows that the generator held
    eligible at the snapshot (the rows of the stored truth table; an offer could only be sent
    to these, so ``uplift`` is 0 elsewhere).
    """

    p: np.ndarray
    p_offer: np.ndarray
    p_no_offer: np.ndarray
    uplift: np.ndarray
    eligible: np.ndarray
    stored_uplift: np.ndarray  # the table's p_offer - p_no_offer (NaN where not eligible)


def _offer_share(dataset_dir: Path, con: duckdb.DuckDBPyConnection) -> float:
    """Monthly offer share of eligible consenting customers: the world's config, else the
    share of eligible rows offered among customers ever offered (who must have consented)."""
    manifest = dataset_dir / "_world.json"
    if manifest.exists():
        share = json.loads(manifest.read_text()).get("config", {}).get("programs", {})
        if "offer_share" in share:
            return float(share["offer_share"])
    row = con.execute(
        """select avg(offered::double) from t where customer_id in
           (select customer_id from t where offered)"""
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def enrollment_oracle(
    dataset_dir: Path, rows: pd.DataFrame, program: str
) -> EnrollmentOracle | None:
    """The true probability of each label row's outcome: enrols within the 3 months from the
    snapshot, given what the generator knew (None if the dataset has no truth).

    The stored table gives, per month ``k`` where the customer was eligible, the monthly hazard
    without an offer ``h0`` (``p_no_offer = 1-(1-h0)^3``) and with one ``h1`` (``p_offer =
    1-(1-h1)^2 (1-h0)``), and whether an offer was sent. Its ``p_*`` alone are not the label's
    probability: they hold only for rows eligible at the snapshot (a row that is not, such as a
    flat without a roof for solar, has probability 0 or, if it becomes eligible inside the
    window, the hazard of those later months), they ignore an offer of the month before (still
    active in the snapshot's month, and visible to models as ``prog_offers_*_90d``) and offers of
    the next two months (sent at random to ``offer_share`` of eligible consenting customers:
    averaged over here, since no model can know them). This combines the stored hazards month by
    month: P(no enrolment) = prod_k (1 - e_k h_k(offer active in k)), with ``e_k`` the
    eligibility of month k on the path without enrolment (eligible from the first eligible month
    on: an enrolment removes the customer from later months of the truth table).
    ``rows`` needs ``customer_id``, ``event_timestamp`` and ``offered_<program>``.
    """
    d = _truth(dataset_dir, "enrollment_probability")
    if d is None or rows.empty:
        return None
    from features.tables import table_dir

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.register(
        "rows_",
        pd.DataFrame(
            {
                "customer_id": rows["customer_id"].astype(str).to_numpy(),
                "ts": pd.to_datetime(rows["event_timestamp"], utc=True).to_numpy(),
                "i": np.arange(len(rows)),
            }
        ),
    )
    con.execute(
        f"""create table t as select customer_id, snapshot,
                   1 - pow(1 - p_no_offer::double, 1 / 3) as h0, p_offer::double as p1,
                   p_no_offer::double as p0, offered
            from read_parquet('{d}/*.parquet') where program = '{program}'"""
    )
    enr = table_dir(dataset_dir, "enrollments")
    cust = table_dir(dataset_dir, "customers")
    # month k of the window (k = -1: the month before the snapshot) is table alias m{k + 1}
    months = ", ".join(
        f"m{k + 1}.h0 as h0_{k + 1}, 1 - sqrt((1 - m{k + 1}.p1) / (1 - m{k + 1}.h0)) as h1_{k + 1},"
        f" m{k + 1}.offered as o_{k + 1}, m{k + 1}.p1 - m{k + 1}.p0 as tau_{k + 1}"
        for k in range(-1, 3)
    )
    joins = " ".join(
        f"left join t m{k + 1} on m{k + 1}.customer_id = r.customer_id "
        f"and m{k + 1}.snapshot = r.ts + interval ({k}) month"
        for k in range(-1, 3)
    )
    # enrolled from the snapshot to the start of month k of the window
    enrolled = ", ".join(
        f"coalesce(e.at >= r.ts and e.at < r.ts + interval ({k}) month, false) as enr_{k}"
        for k in (1, 2)
    )
    df = con.execute(
        f"""with e as (
              select customer_id, max(enrolled_at) as at
              from read_parquet('{enr}/**/*.parquet', union_by_name=true)
              where program = '{program}' group by all),
            c as (select customer_id, coalesce(consent_marketing, false) as consent
                  from read_parquet('{cust}/**/*.parquet', union_by_name=true))
            select r.i, {months}, coalesce(c.consent, false) as consent, {enrolled}
            from rows_ r {joins} left join e on e.customer_id = r.customer_id
              left join c on c.customer_id = r.customer_id
            order by r.i"""
    ).fetchdf()
    consent = df.consent.to_numpy(bool)
    q = np.where(consent, _offer_share(dataset_dir, con), 0.0)
    present = {k: df[f"h0_{k + 1}"].notna().to_numpy() for k in range(-1, 3)}
    off_prev = df["o_0"].astype("boolean").fillna(False).to_numpy(bool)
    offered = rows[f"offered_{program}"].astype("boolean").fillna(False).to_numpy(bool)
    # hazards of months m, m+1, m+2 on the path without enrolment: eligible from the first
    # eligible month on (also after an enrolment, which drops the customer from the table)
    h0, h1 = [], []
    last0 = last1 = np.zeros(len(df))
    seen = np.zeros(len(df), bool)
    for k in range(3):
        pres = present[k]
        enrolled_before = df[f"enr_{k}"].to_numpy(bool) if k else np.zeros(len(df), bool)
        last0 = np.where(pres, df[f"h0_{k + 1}"].fillna(0.0).to_numpy(float), last0)
        last1 = np.where(pres, df[f"h1_{k + 1}"].fillna(0.0).to_numpy(float), last1)
        elig = pres | (seen & enrolled_before)
        seen |= pres
        h0.append(np.where(elig, last0, 0.0))
        h1.append(np.where(elig, last1, 0.0))

    def prob(offer: np.ndarray) -> np.ndarray:
        survive0 = 1 - np.where(offer | off_prev, h1[0], h0[0])
        later = np.zeros(len(df))
        for o1 in (False, True):  # offers of the next two months, averaged over
            for o2 in (False, True):
                w = np.where(o1, q, 1 - q) * np.where(o2, q, 1 - q)
                s1 = 1 - np.where(offer | o1, h1[1], h0[1])
                s2 = 1 - (h1[2] if o1 or o2 else h0[2])
                later += w * s1 * s2
        return np.clip(1 - survive0 * later, 0.0, 1.0)

    p_offer = prob(np.ones(len(df), bool))
    p_no = prob(np.zeros(len(df), bool))
    return EnrollmentOracle(
        p=np.where(offered, p_offer, p_no),
        p_offer=p_offer,
        p_no_offer=p_no,
        uplift=np.where(present[0], p_offer - p_no, 0.0),
        eligible=present[0],
        stored_uplift=df["tau_1"].to_numpy(float),
    )
