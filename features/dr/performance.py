"""Event performance: baselines for every participant of every event, reductions, and the
randomized difference-in-differences estimate with a customer-cluster bootstrap interval.

``measure_events`` loads one hourly panel per time zone (the history every baseline needs
before the first event through the last event) and computes all baselines for each event's
participants; ``performance_frame`` turns that into one row per (event, customer, method):
reduction = baseline - metered over the event hours, in kWh and average kW.

The randomized control group (``called`` false) makes the effect identifiable without
trusting any baseline: the DiD compares (metered - baseline) between called and held-back
customers of the same events, so a baseline's bias on hot event days cancels.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.dr.baselines import METHODS, EventWindow, compute_baselines
from features.dr.config import DRConfig
from features.dr.events import event_days, local_window, read_events, read_participants, to_us
from features.dr.panel import HOUR_US, HourlyPanel, customer_zones, load_zone_panels, local_hours
from wattwise.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class EventMeasurement:
    """Baselines and metered load of one event's participants over its local hours."""

    event_id: str
    day: dt.date
    start: int
    end: int
    customers: np.ndarray
    called: np.ndarray
    metered: np.ndarray  # (C, H)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def hours(self) -> int:
        return self.end - self.start


def load_panels(
    dataset_dir: Path,
    cfg: DRConfig,
    events: pd.DataFrame,
    participants: pd.DataFrame,
) -> dict[str, HourlyPanel]:
    """One panel per time zone with the participants of ``events`` and enough history.

    One scan of the reads serves every zone: the days span the history every baseline needs
    before the first event through the last event (in any zone).
    """
    zones = customer_zones(dataset_dir, sorted(participants.customer_id.unique()))
    zones = zones[zones.customer_id.isin(participants.customer_id)]
    if zones.empty or events.empty:
        return {}
    days = []
    for tz in zones.tz.unique():
        lh = local_hours(to_us(events["start"]) // HOUR_US, str(tz))
        days += [int(lh.min() // 24), int(lh.max() // 24)]
    d0 = dt.date(1970, 1, 1) + dt.timedelta(days=min(days))
    d1 = dt.date(1970, 1, 1) + dt.timedelta(days=max(days))
    first = d0 - dt.timedelta(days=cfg.baselines.history_days + 1)
    return load_zone_panels(dataset_dir, zones, first, d1, calendar=cfg.baselines.holidays)


def measure_events(
    dataset_dir: Path,
    cfg: DRConfig,
    event_ids: list[str] | None = None,
    methods: tuple[str, ...] = METHODS,
    kinds: tuple[str, ...] = ("dr",),
    panels: dict[str, HourlyPanel] | None = None,
    exclude_kinds: tuple[str, ...] | None = None,
) -> list[EventMeasurement]:
    """Baselines (``methods``) and metered load for every participant of the events.

    A called customer's days of any event of ``exclude_kinds`` (default: ``kinds``) are
    never comparison or training days.
    """
    events = read_events(dataset_dir, tuple(sorted(set(kinds) | set(exclude_kinds or ()))))
    measured = events[events.kind.isin(kinds)]
    if event_ids is not None:
        missing = set(event_ids) - set(events.event_id)
        if missing:
            raise DataError(f"unknown events in {dataset_dir.name}: {sorted(missing)[:5]}")
    all_parts = read_participants(dataset_dir)
    all_parts = all_parts[all_parts.event_id.isin(events.event_id)]
    wanted = measured if event_ids is None else measured[measured.event_id.isin(event_ids)]
    parts = all_parts[all_parts.event_id.isin(wanted.event_id)]
    if parts.empty:
        raise DataError("the events have no participants")
    panels = panels or load_panels(dataset_dir, cfg, wanted, parts)
    out = []
    for tz, panel in panels.items():
        excl = event_days(panel, events, all_parts)
        in_tz = parts[parts.customer_id.isin(panel.customers)]
        for ev in wanted[wanted.event_id.isin(in_tz.event_id)].itertuples():
            p = in_tz[in_tz.event_id == ev.event_id]
            rows = pd.Index(panel.customers).get_indexer(p.customer_id)
            try:
                day, s, e = local_window(ev.start, ev.end, tz)
            except DataError as exc:
                log.warning("skipping %s: %s", ev.event_id, exc)
                continue
            sub = panel.subset(rows)
            win = EventWindow(sub.day_index(day), s, e)
            base = compute_baselines(sub, win, cfg.baselines, excl[rows], methods)
            out.append(
                EventMeasurement(
                    str(ev.event_id),
                    day,
                    s,
                    e,
                    sub.customers,
                    p.called.to_numpy(bool),
                    sub.kwh[:, win.day, s:e],
                    base,
                )
            )
    return out


def performance_frame(measurements: list[EventMeasurement]) -> pd.DataFrame:
    """One row per (event, customer, method): baseline, metered, reduction in kWh and kW."""
    frames = []
    for m in measurements:
        met = m.metered.sum(axis=1)
        complete = np.isfinite(m.metered).all(axis=1)
        for method, b in m.baselines.items():
            base = b.sum(axis=1)
            ok = complete & np.isfinite(b).all(axis=1)
            frames.append(
                pd.DataFrame(
                    {
                        "event_id": m.event_id,
                        "customer_id": m.customers,
                        "called": m.called,
                        "method": method,
                        "hours": m.hours,
                        "baseline_kwh": np.where(ok, base, np.nan),
                        "metered_kwh": np.where(complete, met, np.nan),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(
            columns=[
                "event_id",
                "customer_id",
                "called",
                "method",
                "hours",
                "baseline_kwh",
                "metered_kwh",
                "reduction_kwh",
                "reduction_kw",
                "baseline_kw",
            ]
        )
    df = pd.concat(frames, ignore_index=True)
    df["reduction_kwh"] = df.baseline_kwh - df.metered_kwh
    df["reduction_kw"] = df.reduction_kwh / df.hours
    df["baseline_kw"] = df.baseline_kwh / df.hours
    return df


@dataclass
class DidResult:
    """Called minus control mean reduction (kW per customer), with a bootstrap interval."""

    estimate_kw: float
    ci_low: float
    ci_high: float
    treated_kw: float
    control_kw: float
    baseline_kw: float
    n_treated: int
    n_control: int
    level: float

    @property
    def percent(self) -> float:
        return 100.0 * self.estimate_kw / self.baseline_kw if self.baseline_kw else float("nan")

    def render(self) -> str:
        return (
            f"{self.estimate_kw:+.3f} kW per customer [{self.ci_low:+.3f}, {self.ci_high:+.3f}] "
            f"({self.level:.0%} CI; {self.percent:+.1f} % of baseline; "
            f"called {self.treated_kw:+.3f} vs control {self.control_kw:+.3f}; "
            f"{self.n_treated:,} called and {self.n_control:,} control customer-events)"
        )


def did(
    frame: pd.DataFrame,
    outcome: str = "reduction_kw",
    *,
    n_boot: int = 1000,
    seed: int = 7,
    level: float = 0.95,
) -> DidResult:
    """Difference in differences: mean(baseline - metered) of called minus control rows.

    The interval is a customer-cluster bootstrap (Poisson weights): a customer's events are
    resampled together, since the same home appears in many events.
    """
    f = frame[np.isfinite(frame[outcome])]
    t, c = f[f.called], f[~f.called]
    if t.empty or c.empty:
        raise DataError("difference in differences needs both called and control rows")
    cust, code = np.unique(f.customer_id.to_numpy().astype(str), return_inverse=True)
    y = f[outcome].to_numpy(float)
    tr = f.called.to_numpy(bool)
    U = len(cust)
    sT = np.bincount(code, weights=y * tr, minlength=U)
    nT = np.bincount(code, weights=tr.astype(float), minlength=U)
    sC = np.bincount(code, weights=y * ~tr, minlength=U)
    nC = np.bincount(code, weights=(~tr).astype(float), minlength=U)
    est = sT.sum() / nT.sum() - sC.sum() / nC.sum()
    rng = np.random.default_rng(seed)
    boots = []
    for chunk in np.array_split(np.arange(n_boot), max(1, n_boot * U // 5_000_000 + 1)):
        W = rng.poisson(1.0, (len(chunk), U)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            boots.append((W @ sT) / (W @ nT) - (W @ sC) / (W @ nC))
    b = np.concatenate(boots)
    b = b[np.isfinite(b)]
    a = (1 - level) / 2
    base = float(t.baseline_kw.mean()) if "baseline_kw" in t else float("nan")
    return DidResult(
        float(est),
        float(np.quantile(b, a)),
        float(np.quantile(b, 1 - a)),
        float(t[outcome].mean()),
        float(c[outcome].mean()),
        base,
        len(t),
        len(c),
        level,
    )


@dataclass
class EffectEstimate:
    """Effect of events on called customers by each baseline (randomized or comparison group)."""

    kinds: tuple[str, ...]
    events: int
    by_method: dict[str, DidResult]
    raw_ratio: float  # 1 - mean metered kW of called / of comparison customers in event hours

    def render(self) -> str:
        lines = [
            f"{self.events} events ({', '.join(self.kinds)}); raw ratio of means: called use "
            f"{100 * self.raw_ratio:.1f} % less than the comparison group in event hours"
        ]
        for m, d in self.by_method.items():
            lines.append(f"  {m:<14} {d.render()}")
        return "\n".join(lines)


def estimate_effect(
    dataset_dir: Path,
    cfg: DRConfig,
    kinds: tuple[str, ...] = ("dr",),
    exclude_kinds: tuple[str, ...] | None = None,
    methods: tuple[str, ...] = METHODS,
) -> tuple[EffectEstimate, pd.DataFrame]:
    """DiD of (baseline - metered) between called and comparison customers, every baseline."""
    ms = measure_events(dataset_dir, cfg, None, methods, kinds, exclude_kinds=exclude_kinds)
    pf = performance_frame(ms)
    if pf.empty:
        raise DataError("no event could be measured")
    any_m = pf[pf.method == methods[0]]
    kw = any_m.metered_kwh / any_m.hours
    raw = 1 - kw[any_m.called].mean() / kw[~any_m.called].mean()
    res = {
        m: did(g, n_boot=cfg.settlement.bootstrap, seed=cfg.settlement.seed)
        for m, g in pf.groupby("method", sort=False)
    }
    return EffectEstimate(kinds, len(ms), res, float(raw)), pf
