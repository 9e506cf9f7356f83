"""Event baselines: what each customer would have used in the event hours without the event.

All methods share one interface, :func:`compute_baselines` (panel, event window, config,
excluded days) -> ``{method: (customers, event hours) kWh}``, and work on every customer at
once (numpy, LightGBM); no loop over customers.

- ``caiso_10of10``: mean of the 10 most recent comparison days (same day type: weekdays
  for a weekday event, 4 weekend/holiday days for a weekend event; the customer's own event
  days excluded; 45 days back at most), times a same-day adjustment: actual / baseline load
  in hours start-4 .. start-2 (the hour right before the event is skipped: pre-cooling and
  notice effects), capped at ±40 % (CAISO load-point adjustment).
- ``high_5of10``: of those 10 days, the 5 with the highest load in the event hours.
- ``middle_8of10`` (ERCOT-style): the 10 days without the highest and the lowest.
- ``towt``: the CalTRACK hourly time-of-week-and-temperature model fitted on the 90 days
  before the event: an intercept per hour of the week, a piecewise-linear temperature term
  (knots 30/45/55/65/75/90 °F, segments without enough hours dropped) with separate slopes
  for occupied and unoccupied hours of the week (occupied: >= 65 % positive residuals of a
  HDD/CDD fit). Weather is per region, so the design is shared by a region's customers and
  the fit reduces to tiny per-customer normal equations after partialling out the
  hour-of-week means (Frisch-Waugh). Deviation from CalTRACK: one trailing 90-day window
  instead of month-weighted windows of a baseline year (DR settles days after the event).
- ``lgbm``: one LightGBM pooled over customers and trained on their non-event days of the
  last 60 days: target and inputs are scaled by each customer's recent daily mean, inputs
  are the recent same-day-type profile at the hour, same-day pre-event load, temperature
  (and its departure from the profile days), hour and weekday.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from features.dr.config import BaselineConfig
from features.dr.panel import HourlyPanel
from wattwise.errors import DataError

log = logging.getLogger(__name__)
METHODS = ("caiso_10of10", "high_5of10", "middle_8of10", "towt", "lgbm")


@dataclass(frozen=True)
class EventWindow:
    """An event on one local day of a panel: hours ``start`` .. ``end`` (exclusive)."""

    day: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 24:
            raise DataError(f"event hours {self.start}-{self.end} must lie within one local day")

    @property
    def hours(self) -> int:
        return self.end - self.start


def _comparison_days(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (C, n) of the n most recent usable days of the event's day type, and validity."""
    C, D = panel.kwh.shape[:2]
    d0 = win.day
    lo = max(0, d0 - cfg.lookback_days)
    same = np.zeros(D, bool)
    same[lo:d0] = panel.day_off[lo:d0] == panel.day_off[d0]
    complete = ~np.isnan(panel.kwh[:, :, win.start : win.end]).any(axis=2)
    cand = same[None, :] & ~exclude & complete
    n = cfg.weekend_days if panel.day_off[d0] else cfg.weekday_days
    key = np.where(cand, np.arange(D)[None, :], -1)
    idx = np.argsort(-key, axis=1, kind="stable")[:, :n]
    valid = np.take_along_axis(key, idx, axis=1) >= 0
    return idx, valid


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of (C, n, H) where mask (C, n) is true; NaN where none."""
    w = mask[:, :, None].astype(float)
    s = np.nansum(x * w, axis=1)
    k = w.sum(axis=1)
    return np.divide(s, k, out=np.full_like(s, np.nan), where=k > 0)


def x_of_y(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, exclude: np.ndarray
) -> dict[str, np.ndarray]:
    """The three comparison-day baselines (C, hours) from one selection of days."""
    idx, valid = _comparison_days(panel, win, cfg, exclude)
    C = panel.kwh.shape[0]
    days = panel.kwh[np.arange(C)[:, None], idx]  # (C, n, 24)
    ev = days[:, :, win.start : win.end]
    enough = valid.sum(axis=1) >= cfg.min_days
    out: dict[str, np.ndarray] = {}

    base = _masked_mean(ev, valid)
    a0, a1 = win.start - cfg.adjustment_hours[0], win.start - cfg.adjustment_hours[1] + 1
    if a0 >= 0:
        actual = panel.kwh[:, win.day, a0:a1].sum(axis=1)
        expect = _masked_mean(days[:, :, a0:a1], valid).sum(axis=1)
        ratio = np.divide(actual, expect, out=np.full(C, np.nan), where=expect > 0)
        cap = cfg.adjustment_cap
        ratio = np.where(np.isfinite(ratio), np.clip(ratio, 1 - cap, 1 + cap), 1.0)
    else:  # an event too early in the day for a same-day window: no adjustment
        ratio = np.ones(C)
    out["caiso_10of10"] = np.where(enough[:, None], base * ratio[:, None], np.nan)

    load = np.where(valid, ev.sum(axis=2), np.nan)  # (C, n) event-window kWh per day
    order = np.argsort(np.where(valid, -load, np.inf), axis=1, kind="stable")  # highest first
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
    high = valid & (rank < cfg.high_days)
    out["high_5of10"] = np.where(enough[:, None], _masked_mean(ev, high), np.nan)

    k = valid.sum(axis=1, keepdims=True)
    mid = valid & (rank >= cfg.middle_drop) & (rank < k - cfg.middle_drop)
    out["middle_8of10"] = np.where(enough[:, None], _masked_mean(ev, mid), np.nan)
    return out


def _segments(temp_f: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """CalTRACK piecewise-linear temperature basis: one column per segment between knots."""
    edges = [-np.inf, *knots, np.inf]
    cols = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if np.isinf(lo):
            cols.append(np.minimum(temp_f, hi))
        else:
            cols.append(np.clip(temp_f, lo, hi) - lo)
    return np.stack(cols, axis=-1)


def _group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of rows of ``values`` (T, ...) per group id (T,) -> (n_groups, ...)."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.searchsorted(g, np.arange(n_groups))
    out = np.zeros((n_groups, *values.shape[1:]), dtype=float)
    present = np.unique(g)
    if present.size:
        s = np.searchsorted(g, present)
        out[present] = np.add.reduceat(values[order], s, axis=0)
    del starts
    return out


def _towt_region(
    y: np.ndarray,
    temp_f: np.ndarray,
    tow: np.ndarray,
    temp_pred_f: np.ndarray,
    tow_pred: np.ndarray,
    cfg: BaselineConfig,
) -> np.ndarray:
    """CalTRACK hourly fit for customers sharing one weather series: y (T, C) -> (C, H)."""
    T, C = y.shape
    finite = np.isfinite(y)
    cnt = _group_sums(finite.astype(float), tow, 168)
    ysum = _group_sums(np.where(finite, y, 0.0), tow, 168)
    ybar = np.divide(ysum, cnt, out=np.full_like(ysum, np.nan), where=cnt > 0)  # (168, C)
    yi = np.where(finite, y, ybar[tow])
    yi = np.where(np.isfinite(yi), yi, 0.0)
    # occupancy from a simple HDD/CDD fit (shared design, many right-hand sides)
    X3 = np.column_stack([np.ones(T), np.maximum(50 - temp_f, 0), np.maximum(temp_f - 65, 0)])
    beta3, *_ = np.linalg.lstsq(X3, yi, rcond=None)
    pos = (yi - X3 @ beta3) > 0
    n_t = np.bincount(tow, minlength=168).astype(float)[:, None]
    occ = _group_sums(pos.astype(float), tow, 168) / np.maximum(n_t, 1) >= cfg.occupancy_threshold
    # temperature basis, unsupported segments dropped
    knots = tuple(cfg.temperature_knots_f)
    B = _segments(temp_f, knots)
    edges = [-np.inf, *knots, np.inf]
    support = np.array(
        [
            ((temp_f >= lo) & (temp_f < hi)).sum()
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
    )
    keep = support >= cfg.min_bin_hours
    B, Bp = B[:, keep], _segments(temp_pred_f, knots)[:, keep]
    K = B.shape[1]
    nt = np.maximum(n_t, 1)
    Bbar = _group_sums(B, tow, 168) / nt  # (168, K)
    Bd = B - Bbar[tow]
    yd = yi - np.where(np.isfinite(ybar), ybar, 0.0)[tow]
    A = _group_sums(Bd[:, :, None] * Bd[:, None, :], tow, 168)  # (168, K, K)
    order = np.argsort(tow, kind="stable")
    ts, bs, ys = tow[order], Bd[order], yd[order]
    bounds = np.searchsorted(ts, np.arange(169))
    G = np.zeros((168, K, C))
    for k in range(168):  # hours of the week, not customers
        a, b = bounds[k], bounds[k + 1]
        if b > a:
            G[k] = bs[a:b].T @ ys[a:b]
    pred = np.full((C, len(tow_pred)), np.nan)
    if K == 0:
        return ybar[tow_pred].T
    eye = np.eye(K) * cfg.ridge * max(float(np.trace(A.sum(0))) / K, 1e-9)
    betas = []
    for w in (occ.astype(float), 1.0 - occ):
        M = np.einsum("kc,kij->cij", w, A) + eye
        g = np.einsum("kc,kic->ci", w, G)
        betas.append(np.linalg.solve(M, g[:, :, None])[:, :, 0])  # (C, K)
    for j, (k, bp) in enumerate(zip(tow_pred, Bp, strict=True)):
        dev = bp - Bbar[k]  # (K,)
        b_occ, b_un = betas[0] @ dev, betas[1] @ dev
        pred[:, j] = ybar[k] + np.where(occ[k], b_occ, b_un)
    return pred


def towt(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, exclude: np.ndarray
) -> np.ndarray:
    """CalTRACK hourly TOWT baseline (C, hours), fitted per region on the trailing window."""
    C = panel.kwh.shape[0]
    d0 = win.day
    lo = max(0, d0 - cfg.regression_days)
    days = np.arange(lo, d0)
    out = np.full((C, win.hours), np.nan)
    if days.size < 14:
        return out
    dates = panel.dates()
    dow = np.array([dates[d].weekday() for d in days])
    tow = (dow[:, None] * 24 + np.arange(24)[None, :]).ravel()
    tow_pred = dates[d0].weekday() * 24 + np.arange(win.start, win.end)
    y_all = np.where(exclude[:, days, None], np.nan, panel.kwh[:, days, :])  # (C, n, 24)
    for r in range(len(panel.regions)):
        rows = np.flatnonzero(panel.region == r)
        if rows.size == 0:
            continue
        tf = panel.temp_c[r, days, :].ravel() * 1.8 + 32
        tp = panel.temp_c[r, d0, win.start : win.end] * 1.8 + 32
        ok = np.isfinite(tf)
        if ok.sum() < 24 * 14 or not np.isfinite(tp).all():
            continue
        y = y_all[rows].reshape(rows.size, -1).T[ok]  # (T, Cr)
        out[rows] = _towt_region(y, tf[ok], tow[ok], tp, tow_pred, cfg)
    return out


def _profiles(
    kwh: np.ndarray, usable: np.ndarray, values: np.ndarray, P: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (C, D, 24) over usable days (C, D) in the previous P days (exclusive).

    Returns (mean (C, D, 24), count (C, D)); cumulative sums make it one pass for every day.
    """
    w = usable.astype(float)
    v = np.where(np.isfinite(values) & usable[:, :, None], values, 0.0)
    cs = np.concatenate([np.zeros((v.shape[0], 1, 24)), np.cumsum(v, axis=1)], axis=1)
    cn = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1)
    D = kwh.shape[1]
    hi = np.arange(D)
    lo = np.maximum(hi - P, 0)
    s = cs[:, hi] - cs[:, lo]
    n = cn[:, hi] - cn[:, lo]
    mean = np.divide(s, n[:, :, None], out=np.full_like(s, np.nan), where=n[:, :, None] > 0)
    return mean, n


def lgbm_baseline(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, exclude: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Pooled LightGBM baseline (C, hours) trained on the customers' recent non-event days."""
    import lightgbm as lgb

    C, D = panel.kwh.shape[:2]
    d0, s, e = win.day, win.start, win.end
    H = win.hours
    P = cfg.lgbm_profile_days
    first = max(P, d0 - cfg.lgbm_days)
    out = np.full((C, H), np.nan)
    if d0 - first < 7:
        return out
    kwh = panel.kwh
    temp = panel.customer_temp()
    day_complete = np.isfinite(kwh).all(axis=2)
    usable = ~exclude & day_complete
    feats_by_type = []
    for off in (False, True):  # profiles of weekdays and of days off
        same = usable & (panel.day_off == off)[None, :]
        feats_by_type.append((_profiles(kwh, same, kwh, P), _profiles(kwh, same, temp, P)))
    days = np.arange(first, d0 + 1)
    is_off = panel.day_off[days]
    prof = np.where(
        is_off[None, :, None], feats_by_type[1][0][0][:, days], feats_by_type[0][0][0][:, days]
    )
    ptemp = np.where(
        is_off[None, :, None], feats_by_type[1][1][0][:, days], feats_by_type[0][1][0][:, days]
    )
    fin = np.isfinite(prof)
    n_fin = fin.sum(axis=2)
    scale = np.divide(  # (C, n) mean hourly kWh on the profile days
        np.where(fin, prof, 0.0).sum(axis=2),
        n_fin,
        out=np.full(n_fin.shape, np.nan),
        where=n_fin > 0,
    )
    scale = np.where(np.isfinite(scale) & (scale > 0.01), scale, np.nan)
    a0, a1 = max(s - cfg.adjustment_hours[0], 0), max(s - cfg.adjustment_hours[1] + 1, 0)
    k = kwh[:, days]
    t = temp[:, days]
    pre = k[:, :, a0:a1].sum(axis=2) if a1 > a0 else np.zeros(k.shape[:2])
    pre_prof = prof[:, :, a0:a1].sum(axis=2) if a1 > a0 else np.ones(k.shape[:2])
    dates = panel.dates()
    dow = np.array([dates[d].weekday() for d in days], float)
    tfin = np.isfinite(t)
    tmax = np.where(tfin.any(axis=2), np.where(tfin, t, -np.inf).max(axis=2), np.nan)
    tmean = np.where(tfin, t, 0.0).sum(axis=2) / np.maximum(tfin.sum(axis=2), 1)
    tmean = np.where(tfin.any(axis=2), tmean, np.nan)
    cols = []
    for h in range(s, e):
        cols.append(
            np.stack(
                [
                    prof[:, :, h] / scale,
                    pre / scale,
                    np.divide(pre, pre_prof, out=np.full_like(pre, np.nan), where=pre_prof > 0),
                    t[:, :, h],
                    t[:, :, h] - ptemp[:, :, h],
                    tmax,
                    tmean,
                    np.broadcast_to(dow[None, :], pre.shape),
                    np.broadcast_to(is_off[None, :].astype(float), pre.shape),
                    np.full(pre.shape, float(h)),
                    np.broadcast_to(np.log(scale), pre.shape),
                ],
                axis=-1,
            )
        )
    X = np.stack(cols, axis=2)  # (C, n, H, F)
    y = k[:, :, s:e] / scale[:, :, None]
    train_day = np.zeros(len(days), bool)
    train_day[:-1] = True
    ok = (
        train_day[None, :, None]
        & usable[:, days][:, :, None]
        & np.isfinite(y)
        & np.isfinite(scale)[:, :, None]
    )
    Xtr, ytr = X[ok], y[ok]
    if len(ytr) < 500:
        return out
    rng = np.random.default_rng(seed)
    if len(ytr) > cfg.lgbm_max_rows:
        pick = rng.choice(len(ytr), cfg.lgbm_max_rows, replace=False)
        Xtr, ytr = Xtr[pick], ytr[pick]
    params = {
        "objective": "regression",
        "learning_rate": 0.08,
        "num_leaves": 31,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "num_threads": cfg.lgbm_threads,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
    }
    booster = lgb.train(params, lgb.Dataset(Xtr, ytr), num_boost_round=cfg.lgbm_rounds)
    Xp = X[:, -1].reshape(C * H, -1)
    pred = np.asarray(booster.predict(Xp), float).reshape(C, H) * scale[:, -1][:, None]
    return np.asarray(pred, float)


def compute_baselines(
    panel: HourlyPanel,
    win: EventWindow,
    cfg: BaselineConfig,
    exclude: np.ndarray | None = None,
    methods: tuple[str, ...] = METHODS,
) -> dict[str, np.ndarray]:
    """Every requested baseline for every customer of ``panel``: ``{method: (C, hours) kWh}``.

    ``exclude`` (C, D) marks days a customer's load was changed (its own event days): they are
    never comparison or training days.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise DataError(f"unknown baseline methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    C, D = panel.kwh.shape[:2]
    if not 0 <= win.day < D:
        raise DataError(f"event day index {win.day} outside the panel's {D} days")
    ex = np.zeros((C, D), bool) if exclude is None else exclude.astype(bool)
    if ex.shape != (C, D):
        raise DataError(f"exclude has shape {ex.shape}, expected {(C, D)}")
    ex = ex.copy()
    ex[:, win.day :] = True  # never learn from the event day or after
    out: dict[str, np.ndarray] = {}
    if {"caiso_10of10", "high_5of10", "middle_8of10"} & set(methods):
        out.update({k: v for k, v in x_of_y(panel, win, cfg, ex).items() if k in methods})
    if "towt" in methods:
        out["towt"] = towt(panel, win, cfg, ex)
    if "lgbm" in methods:
        out["lgbm"] = lgbm_baseline(panel, win, cfg, ex)
    return {m: out[m] for m in methods}
