"""Event planning: the smallest set of enrolled customers whose expected reduction meets a
target with a stated confidence, one rule for ``wattwise dr plan`` and ``POST /dr/target``.

Each candidate gets the response model's expected kW and spread for the event, from the
inputs :func:`training.dr.data.event_frame` builds (event context, FeatureService values).
:func:`select_customers` is the rule: customers expected to reduce (mu > 0) largest first
(ties by id; with a per-kWh incentive and an equal fixed call cost this is also the
kW-per-dollar order, reported per customer), taken until the lower confidence bound of the
total, sum(mu) - z * sqrt(sum(sd^2)) (independent errors), reaches the target.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import norm

from features.dr.config import DRConfig, PlanningConfig
from features.dr.events import read_events
from features.dr.panel import _glob, customer_zones
from training.dr.data import event_frame, planning_features
from wattwise.errors import DataError, WattwiseError

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Whom to call: the chosen candidates in call order and the running totals."""

    order: np.ndarray  # positions in the inputs, largest expected reduction first
    cum_expected_kw: np.ndarray
    cum_lower_kw: np.ndarray  # sum(mu) - z * sqrt(sum(sd^2)) after each customer
    target_kw: float
    confidence: float
    reached: bool  # the lower bound of the whole selection reaches the target

    @property
    def expected_kw(self) -> float:
        return float(self.cum_expected_kw[-1]) if len(self.order) else 0.0

    @property
    def lower_kw(self) -> float:
        return float(self.cum_lower_kw[-1]) if len(self.order) else 0.0


def select_customers(
    customer_ids: Sequence[str] | np.ndarray,
    expected_kw: np.ndarray,
    sd_kw: np.ndarray,
    target_kw: float,
    confidence: float,
) -> Selection:
    """The planning rule, the same for the CLI and the service.

    Candidates with a finite expected reduction above 0 (calling anyone else only widens
    the bound), largest first, ties by customer id so that the input order never matters;
    the shortest prefix whose lower bound at ``confidence`` reaches ``target_kw``. When no
    prefix does, the prefix with the highest lower bound (the most that can be promised),
    with ``reached`` False. A missing spread counts as 0.
    """
    ids = np.asarray(customer_ids, dtype=str)
    mu = np.asarray(expected_kw, dtype=float)
    sd = np.nan_to_num(np.asarray(sd_kw, dtype=float), nan=0.0)
    ok = np.flatnonzero(np.isfinite(mu) & (mu > 0))
    ranked = ok[np.lexsort((ids[ok], -mu[ok]))]
    z = float(norm.ppf(confidence))
    cum = np.cumsum(mu[ranked])
    lower = cum - z * np.sqrt(np.cumsum(sd[ranked] ** 2))
    hit = np.flatnonzero(lower >= target_kw)
    reached = hit.size > 0
    k = int(hit[0]) + 1 if reached else (int(np.argmax(lower)) + 1 if lower.size else 0)
    return Selection(ranked[:k], cum[:k], lower[:k], float(target_kw), confidence, reached)


def response_kw(output: Any) -> tuple[np.ndarray, np.ndarray]:
    """Expected kW reduction and its spread per row from a DR-response pyfunc's output
    (``expected_kw``, ``sd_kw``; a model without a spread: 0)."""
    if isinstance(output, pd.DataFrame):
        col = "expected_kw" if "expected_kw" in output else output.columns[0]
        mu = output[col].to_numpy(dtype=float)
        sd = output["sd_kw"].to_numpy(dtype=float) if "sd_kw" in output else np.zeros(len(mu))
        return mu, sd
    mu = np.asarray(output, dtype=float).reshape(-1)
    return mu, np.zeros(len(mu))


def planned_event(event: dict[str, Any], planning: PlanningConfig) -> dict[str, Any]:
    """A proposed event with the planning defaults where it leaves them out: notified
    ``default_notice_hours`` before the start, ``default_incentive_per_kwh``."""
    out = dict(event)
    start = pd.Timestamp(out["start"])
    if out.get("notified_at") is None:
        out["notified_at"] = start - pd.Timedelta(hours=planning.default_notice_hours)
    if out.get("incentive_per_kwh") is None:
        out["incentive_per_kwh"] = planning.default_incentive_per_kwh
    return out


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


def enrolled_customers(
    dataset_dir: Path, at: pd.Timestamp, region: str | None = None
) -> pd.DataFrame:
    """customer_id, region, tz of the customers enrolled in demand response at ``at`` (of
    ``region`` where given): the candidates of an event, for the CLI and the service."""
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
    notice_hours: float | None = None,
    temperature_c: float | None = None,
    model_uri: str = "models:/dr_response@champion",
) -> Plan:
    """Choose customers for a proposed event (local ``day``, ``hours``) to meet ``target_mw``.

    One event per region at its local hours; each region's enrolled customers are scored
    on :func:`training.dr.data.event_frame` with :func:`planning_features` (the online
    store's latest values for an event still to come, as ``POST /dr/target`` reads them)
    and chosen across regions by :func:`select_customers`.
    """
    import mlflow

    from training.registry import model_inputs
    from training.tracking import setup

    s, e = hours
    if not 0 <= s < e <= 24:
        raise DataError(f"hours {s}-{e} must be within one day, start < end")
    planning = cfg.planning
    conf = planning.confidence if confidence is None else confidence
    notice = planning.default_notice_hours if notice_hours is None else notice_hours
    zones = customer_zones(dataset_dir)
    if region:
        zones = zones[zones.region == region]
    past = read_events(dataset_dir)
    frames = []
    for (reg, tz), g in zones.groupby(["region", "tz"]):  # a few regions
        start = pd.Timestamp(dt.datetime.combine(day, dt.time(s)), tz=str(tz)).tz_convert("UTC")
        ev = planned_event(
            {
                "event_id": None,
                "region": reg,
                "start": start,
                "end": start + pd.Timedelta(hours=e - s),
                "notified_at": start - pd.Timedelta(hours=notice),
                "incentive_per_kwh": incentive_per_kwh,
                "temperature_c": temperature_c,
            },
            planning,
        )
        enrolled = enrolled_customers(dataset_dir, start, str(reg)).customer_id
        ids = g.customer_id[g.customer_id.isin(enrolled)].tolist()
        if not ids:
            continue
        feats = planning_features(dataset_dir, ids, ev["notified_at"])
        try:
            X = event_frame(dataset_dir, ev, ids, feats, past)
        except DataError as exc:
            raise DataError(f"{exc} with --temp") from exc
        frames.append(X.assign(region=reg))
    if not frames:
        raise DataError(
            f"no customers enrolled in demand response on {day}"
            + (f" in {region}" if region else "")
        )
    X = pd.concat(frames, ignore_index=True)
    setup(settings)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises its own errors for a missing model/alias
        raise WattwiseError(
            f"cannot load {model_uri}: train it first (`wattwise train dr_response`)"
        ) from exc
    mu, sd = response_kw(model.predict(model_inputs(model, X)))
    sel = select_customers(X.customer_id.to_numpy(), mu, sd, target_mw * 1000, conf)
    inc = X.ctx_incentive_per_kwh.to_numpy()[sel.order]
    picked = pd.DataFrame(
        {
            "customer_id": X.customer_id.to_numpy()[sel.order],
            "region": X.region.to_numpy()[sel.order],
            "expected_kw": mu[sel.order],
            "sd_kw": sd[sel.order],
        }
    )
    # cost of each call: the fixed cost and the incentive on the expected kWh; kW per dollar
    # is reported (with a per-kWh incentive and an equal call cost it orders as kW does)
    cost = planning.call_cost_per_customer + inc * picked.expected_kw.to_numpy() * (e - s)
    picked["kw_per_dollar"] = np.where(
        cost > 0, picked.expected_kw / np.maximum(cost, 1e-9), picked.expected_kw
    )
    picked["cum_expected_kw"] = sel.cum_expected_kw
    picked["cum_lower_kw"] = sel.cum_lower_kw
    return Plan(picked, len(X), sel.target_kw, conf, sel.reached, float(cost.sum()))
