"""Event planning: the smallest set of enrolled customers whose expected reduction meets a
target with a stated confidence.

Each enrolled customer gets the @champion response model's expected kW and spread for the
proposed event (features point-in-time at the notice, context from the event). Customers
are added largest expected kW first (the smallest set; with a per-kWh incentive and an equal
fixed call cost this is also the kW-per-dollar order, reported per customer) until the lower
confidence bound of the total, sum(mu) - z * sqrt(sum(sd^2)) (independent errors), reaches
the target.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import norm

from features.dr.config import DRConfig
from features.dr.events import read_events
from features.dr.panel import _glob, customer_zones
from training.dr.data import SERVICE, event_context, model_frame
from wattwise.errors import DataError, WattwiseError

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Plan:
    selected: pd.DataFrame  # customer_id, region, expected_kw, sd_kw, cum_expected_kw, cum_lower_kw
    enrolled: int
    target_kw: float
    confidence: float
    met: bool
    expected_cost: float

    def render(self) -> str:
        s = self.selected
        tot = s.expected_kw.sum() if len(s) else 0.0
        low = s.cum_lower_kw.iloc[-1] if len(s) else 0.0
        head = "meets" if self.met else "CANNOT meet"
        return (
            f"{head} {self.target_kw / 1000:.3f} MW at {self.confidence:.0%} confidence with "
            f"{len(s):,} of {self.enrolled:,} enrolled customers: expected {tot / 1000:.3f} MW, "
            f"lower bound {low / 1000:.3f} MW; expected incentive cost {self.expected_cost:,.2f}"
        )


def enrolled_customers(dataset_dir: Path, at: pd.Timestamp, region: str | None) -> pd.DataFrame:
    """customer_id, region, tz of customers enrolled in demand response at ``at``."""
    con = duckdb.connect()
    df = con.execute(
        f"""SELECT DISTINCT customer_id FROM {_glob(dataset_dir, "enrollments")}
            WHERE program = 'demand_response' AND enrolled_at <= ?
              AND (ended_at IS NULL OR ended_at > ?)""",
        [at.to_pydatetime(), at.to_pydatetime()],
    ).fetchdf()
    z = customer_zones(dataset_dir, df.customer_id.tolist())
    if region:
        z = z[z.region == region]
    return z.reset_index(drop=True)


def plan_event(
    dataset_dir: Path,
    settings: Settings,
    cfg: DRConfig,
    day: dt.date,
    hours: tuple[int, int],
    target_mw: float,
    *,
    region: str | None = None,
    confidence: float | None = None,
    incentive_per_kwh: float | None = None,
    notice_hours: float = 24.0,
    temperature_c: float | None = None,
    model_uri: str = "models:/dr_response@champion",
) -> Plan:
    """Choose customers for a proposed event (local ``day``, ``hours``) to meet ``target_mw``."""
    import mlflow

    from features.store import historical, open_store
    from training.tracking import setup

    s, e = hours
    if not 0 <= s < e <= 24:
        raise DataError(f"hours {s}-{e} must be within one day, start < end")
    conf = confidence or cfg.planning.confidence
    inc = cfg.planning.default_incentive_per_kwh if incentive_per_kwh is None else incentive_per_kwh
    probe = pd.Timestamp(day, tz="UTC")
    cust = enrolled_customers(dataset_dir, probe, region)
    if cust.empty:
        raise DataError(
            f"no customers enrolled in demand response on {day}"
            + (f" in {region}" if region else "")
        )
    rows = []
    for (reg, tz), g in cust.groupby(["region", "tz"], dropna=False):  # a few regions
        start = pd.Timestamp(dt.datetime.combine(day, dt.time(s)), tz=str(tz)).tz_convert("UTC")
        end = start + pd.Timedelta(hours=e - s)
        rows.append(
            {
                "event_id": f"plan-{reg}",
                "region": reg,
                "start": start,
                "end": end,
                "notified_at": start - pd.Timedelta(hours=notice_hours),
                "incentive_per_kwh": inc,
                "customers": g.customer_id.tolist(),
            }
        )
    ev = pd.DataFrame(rows)
    past = read_events(dataset_dir)
    ctx = event_context(
        dataset_dir, pd.concat([past, ev.drop(columns="customers")], ignore_index=True)
    )
    ctx = ctx[ctx.event_id.str.startswith("plan-")]
    if temperature_c is not None:
        ctx = ctx.assign(ctx_temp_mean_c=temperature_c, ctx_temp_max_c=temperature_c)
    if ctx.ctx_temp_mean_c.isna().any():
        raise DataError(f"no weather for {day} {s}-{e}h in the dataset: pass --temp (forecast °C)")
    ent = ev[["event_id", "customers", "notified_at"]].explode("customers")
    ent = ent.rename(columns={"customers": "customer_id", "notified_at": "event_timestamp"})
    ent = ent.merge(ctx.drop(columns=["notified_at"], errors="ignore"), on="event_id")
    ent = ent.reset_index(drop=True)
    feats = historical(open_store(dataset_dir), SERVICE, ent[["customer_id", "event_timestamp"]])
    X = model_frame(ent, feats)
    setup(settings)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises its own errors for a missing model/alias
        raise WattwiseError(
            f"cannot load {model_uri}: train it first (`wattwise train dr_response`)"
        ) from exc
    from training.registry import model_inputs

    pred = model.predict(model_inputs(model, X))
    out = pd.DataFrame(
        {
            "customer_id": X.customer_id.to_numpy(),
            "region": X.region.to_numpy(),
            "expected_kw": np.asarray(pred["expected_kw"], float),
            "sd_kw": np.asarray(pred["sd_kw"], float),
        }
    )
    hours_n = e - s
    cost = cfg.planning.call_cost_per_customer + inc * np.maximum(out.expected_kw, 0) * hours_n
    out["kw_per_dollar"] = np.where(
        cost > 0, out.expected_kw / np.maximum(cost, 1e-9), out.expected_kw
    )
    # the smallest set: largest expected reductions first (kW per dollar is reported; with a
    # per-kWh incentive and an equal call cost it orders customers the same way)
    out = out.sort_values("expected_kw", ascending=False, kind="stable").reset_index(drop=True)
    z = float(norm.ppf(conf))
    out["cum_expected_kw"] = out.expected_kw.cumsum()
    out["cum_lower_kw"] = out.cum_expected_kw - z * np.sqrt((out.sd_kw**2).cumsum())
    target_kw = target_mw * 1000
    hit = np.flatnonzero(out.cum_lower_kw.to_numpy() >= target_kw)
    met = hit.size > 0
    k = int(hit[0]) + 1 if met else int(np.argmax(out.cum_lower_kw.to_numpy())) + 1
    sel = out.head(k)
    exp_cost = float(
        (cfg.planning.call_cost_per_customer + inc * sel.expected_kw.clip(lower=0) * hours_n).sum()
    )
    return Plan(sel, len(out), target_kw, conf, met, exp_cost)
