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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def _by_dow(v: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Sums of ``v`` (n days, 24, ...) over days of each weekday -> (168, ...), hour of week
    ``dow * 24 + hour``: one matrix product with the (7, n) weekday indicator."""
    n = v.shape[0]
    out = onehot @ v.reshape(n, -1).astype(float, copy=False)
    return out.reshape(168, *v.shape[2:])


def _towt_region(
    y: np.ndarray,
    w: np.ndarray,
    temp_f: np.ndarray,
    dow: np.ndarray,
    temp_pred_f: np.ndarray,
    tow_pred: np.ndarray,
    cfg: BaselineConfig,
) -> np.ndarray:
    """CalTRACK hourly fit for customers sharing one weather series -> (C, H).

    ``y`` (n days, 24, C) loads, ``w`` (n, 24) whether the hour has a temperature (hours
    without one are left out), ``temp_f`` (n, 24) °F, ``dow`` (n,) weekdays. Every sum over
    the hours of a time of week is a matrix product with the weekday indicator, and the
    per-customer temperature slopes come from tiny normal equations after the hour-of-week
    means are partialled out (Frisch-Waugh), so nothing loops over customers or hours.
    """
    n, _, C = y.shape
    onehot = (dow[None, :] == np.arange(7)[:, None]).astype(float)  # (7, n)
    wf = w.astype(float)
    tf = np.where(w, temp_f, 0.0)
    n_t = _by_dow(wf, onehot)[:, None]  # (168, 1) hours with a temperature
    finite = np.isfinite(y)
    if not w.all():
        finite &= w[:, :, None]
    if finite.all():  # the common case: no read missing, every hour with a temperature
        cnt = np.broadcast_to(n_t, (168, C))
        ybar = _by_dow(y, onehot) / np.maximum(cnt, 1)
        yi = y
    else:
        yi = np.where(finite, y, 0.0)
        cnt = _by_dow(finite, onehot)  # (168, C)
        ybar = np.divide(_by_dow(yi, onehot), cnt, out=np.full((168, C), np.nan), where=cnt > 0)
        md, mh, mc = np.nonzero(~finite)  # few: missing reads get their hour-of-week mean
        fill = ybar.reshape(7, 24, C)[dow[md], mh, mc]
        yi[md, mh, mc] = np.where(np.isfinite(fill), fill, 0.0)
        if not w.all():
            yi *= wf[:, :, None]  # hours without temperature weigh nothing
    # occupancy from a simple HDD/CDD fit (shared design, many right-hand sides)
    X3 = np.stack([wf, np.maximum(50 - tf, 0) * wf, np.maximum(tf - 65, 0) * wf], -1)
    X3f = X3.reshape(-1, 3)
    yf = yi.reshape(-1, C)
    beta3 = np.linalg.lstsq(X3f.T @ X3f, X3f.T @ yf, rcond=None)[0]  # (3, C)
    fit = X3f @ beta3
    pos = np.greater(yf, fit, out=np.empty(fit.shape, bool))
    if not w.all():
        pos &= wf.reshape(-1, 1) > 0
    del fit
    n_t = np.maximum(n_t, 1)
    occ = _by_dow(pos.reshape(n, 24, C), onehot) / n_t >= cfg.occupancy_threshold
    # temperature basis, unsupported segments dropped
    knots = tuple(cfg.temperature_knots_f)
    edges = [-np.inf, *knots, np.inf]
    tw = temp_f[w]
    support = np.array(
        [((tw >= lo) & (tw < hi)).sum() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    )
    keep = support >= cfg.min_bin_hours
    B = _segments(tf, knots)[:, :, keep] * wf[:, :, None]  # (n, 24, K)
    Bp = _segments(temp_pred_f, knots)[:, keep]
    K = B.shape[2]
    if K == 0:
        return ybar[tow_pred].T
    Bbar = _by_dow(B, onehot) / n_t  # (168, K)
    Bd = (B - Bbar.reshape(7, 24, K)[dow]) * wf[:, :, None]  # (n, 24, K)
    A = _by_dow(Bd[:, :, :, None] * Bd[:, :, None, :], onehot)  # (168, K, K)
    G = np.empty((7, 24, K, C))
    # sum of Bd ⊗ (y - ybar) per hour of week; Bd sums to zero there, so ybar drops out
    for h in range(24):  # per hour of the day: (7·K, n) @ (n, C)
        L = (onehot[:, :, None] * Bd[None, :, h, :]).transpose(0, 2, 1).reshape(7 * K, n)
        G[:, h] = (L @ yi[:, h, :]).reshape(7, K, C)
    G = G.reshape(168, K, C)
    eye = np.eye(K) * cfg.ridge * max(float(np.trace(A.sum(0))) / K, 1e-9)
    betas = []
    for wt in (occ.astype(float), 1.0 - occ):
        M = np.einsum("kc,kij->cij", wt, A) + eye
        g = np.einsum("kc,kic->ci", wt, G)
        betas.append(np.linalg.solve(M, g[:, :, None])[:, :, 0])  # (C, K)
    pred = np.full((C, len(tow_pred)), np.nan)
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
    tow_pred = dates[d0].weekday() * 24 + np.arange(win.start, win.end)
    for r in range(len(panel.regions)):
        rows = np.flatnonzero(panel.region == r)
        if rows.size == 0:
            continue
        tf = panel.temp_c[r, lo:d0, :] * 1.8 + 32  # (n, 24)
        tp = panel.temp_c[r, d0, win.start : win.end] * 1.8 + 32
        ok = np.isfinite(tf)
        if ok.sum() < 24 * 14 or not np.isfinite(tp).all():
            continue
        y = np.ascontiguousarray(panel.kwh[rows, lo:d0, :].transpose(1, 2, 0))  # (n, 24, Cr)
        ex = exclude[rows, lo:d0].T  # (n, Cr)
        if ex.any():
            np.copyto(y, np.nan, where=ex[:, None, :])
        out[rows] = _towt_region(y, ok, tf, dow, tp, tow_pred, cfg)
    return out


def _recent_means(
    values: np.ndarray, usable: np.ndarray, off: np.ndarray, P: int, lo: int
) -> np.ndarray:
    """Mean of ``values`` (C, n, K) over the usable days (C, n) of the same day type
    (``off`` (n,): weekend/holiday) among the P days before each day j >= ``lo`` (day j itself
    excluded): (C, n - lo, K), NaN where there is none.

    The windows are one (n - lo, n) 0/1 matrix, so every day's profile of every customer is
    one matrix product; a value missing on a usable day (an hour without weather) is left out
    of that hour's mean.
    """
    C, n, K = values.shape
    ok = usable[:, :, None] & np.isfinite(values)
    v = np.where(ok, values, 0.0).transpose(1, 0, 2).reshape(n, C * K)
    o = ok.transpose(1, 0, 2).reshape(n, C * K).astype(float)
    j = np.arange(lo, n)[:, None]
    i = np.arange(n)[None, :]
    W = ((i < j) & (i >= j - P) & (off[i] == off[j])).astype(float)
    s = (W @ v).reshape(n - lo, C, K).transpose(1, 0, 2)
    k = (W @ o).reshape(n - lo, C, K).transpose(1, 0, 2)
    return np.divide(s, k, out=np.full_like(s, np.nan), where=k > 0)


@dataclass(frozen=True)
class _LgbmRows:
    """Per (customer, day) and (customer, day, hour) inputs of the learned baseline."""

    prof: np.ndarray  # (C, n, H) same-day-type profile at the event hours, scaled
    pre: np.ndarray  # (C, n) pre-event load, scaled
    pre_ratio: np.ndarray  # (C, n) pre-event load / its profile
    temp: np.ndarray  # (C, n, H) temperature at the hour
    temp_dev: np.ndarray  # (C, n, H) its departure from the profile days
    tmax: np.ndarray  # (C, n)
    tmean: np.ndarray  # (C, n)
    log_scale: np.ndarray  # (C, n)
    dow: np.ndarray  # (n,)
    off: np.ndarray  # (n,)
    y: np.ndarray  # (C, n, H) load at the hour, scaled

    def matrix(self, c: np.ndarray, j: np.ndarray, h: np.ndarray, start: int) -> np.ndarray:
        """Feature rows (N, 11) of the (customer, day, hour) triples."""
        return np.column_stack(
            [
                self.prof[c, j, h],
                self.pre[c, j],
                self.pre_ratio[c, j],
                self.temp[c, j, h],
                self.temp_dev[c, j, h],
                self.tmax[c, j],
                self.tmean[c, j],
                self.dow[j],
                self.off[j],
                (start + h).astype(float),
                self.log_scale[c, j],
            ]
        )


def _lgbm_rows(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, usable: np.ndarray, first: int
) -> _LgbmRows:
    """Inputs for days ``first`` .. event day, computed on the few hours the model uses.

    Profiles (mean of the customer's usable days of the same day type in the last P days)
    are needed only at the event and adjustment hours, and the scale (the profile's mean
    hourly kWh) only from daily totals, so nothing is built over every hour of every day.
    """
    d0, s, e = win.day, win.start, win.end
    P = cfg.lgbm_profile_days
    a0, a1 = max(s - cfg.adjustment_hours[0], 0), max(s - cfg.adjustment_hours[1] + 1, 0)
    lo = max(first - P, 0)
    span = slice(lo, d0 + 1)
    kwh = panel.kwh[:, span]
    use = usable[:, span]
    # region temperature (an extra all-NaN region for customers without one)
    tr = np.concatenate([panel.temp_c[:, span], np.full((1, *kwh.shape[1:]), np.nan)])
    reg = np.where(panel.region >= 0, panel.region, len(panel.regions))
    temp_ev = tr[:, :, s:e][reg]  # (C, n', H)
    vals = np.concatenate(
        [kwh[:, :, s:e], kwh[:, :, a0:a1], kwh.sum(axis=2, keepdims=True), temp_ev], axis=2
    )
    H, A = e - s, a1 - a0
    off_all = panel.day_off[span]
    j0 = first - lo
    means = _recent_means(vals, use, off_all, P, j0)  # weekdays and days off apart
    prof, pre_prof = means[:, :, :H], means[:, :, H : H + A].sum(axis=2)
    day_mean, ptemp = means[:, :, H + A] / 24.0, means[:, :, H + A + 1 :]
    scale = np.where(np.isfinite(day_mean) & (day_mean > 0.01), day_mean, np.nan)
    k = kwh[:, j0:]
    pre = k[:, :, a0:a1].sum(axis=2) if A > 0 else np.zeros(k.shape[:2])
    if A == 0:
        pre_prof = np.ones(k.shape[:2])
    t_day = tr[:, j0:]  # (R+1, n, 24)
    tfin = np.isfinite(t_day)
    anyf = tfin.any(axis=2)
    tmax = np.where(anyf, np.where(tfin, t_day, -np.inf).max(axis=2), np.nan)[reg]
    tmean = np.where(
        anyf, np.where(tfin, t_day, 0.0).sum(axis=2) / np.maximum(tfin.sum(2), 1), np.nan
    )
    temp = temp_ev[:, j0:]
    dates = panel.dates()
    dow = np.array([dates[d].weekday() for d in range(first, d0 + 1)], float)
    sc = scale[:, :, None]
    return _LgbmRows(
        prof=prof / sc,
        pre=pre / scale,
        pre_ratio=np.divide(pre, pre_prof, out=np.full_like(pre, np.nan), where=pre_prof > 0),
        temp=temp,
        temp_dev=temp - ptemp,
        tmax=tmax,
        tmean=tmean[reg],
        log_scale=np.log(scale),
        dow=dow,
        off=off_all[j0:].astype(float),
        y=k[:, :, s:e] / sc,
    )


def lgbm_baseline(
    panel: HourlyPanel, win: EventWindow, cfg: BaselineConfig, exclude: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Pooled LightGBM baseline (C, hours) trained on the customers' recent non-event days.

    One model for every customer: target and load inputs are divided by the customer's
    recent mean hourly load, so homes of any size share the shape of their response to
    temperature, weekday and same-day load. Training rows are sampled (``lgbm_max_rows``)
    before any feature matrix is built; only the event hours are predicted.
    """
    import lightgbm as lgb

    C, D = panel.kwh.shape[:2]
    d0, H = win.day, win.hours
    first = max(cfg.lgbm_profile_days, d0 - cfg.lgbm_days)
    out = np.full((C, H), np.nan)
    if d0 - first < 7:
        return out
    usable = ~exclude & np.isfinite(panel.kwh).all(axis=2)
    r = _lgbm_rows(panel, win, cfg, usable, first)
    n = d0 - first  # training days: first .. d0 - 1; day n is the event day
    ok = (
        usable[:, first:d0, None]
        & np.isfinite(r.y[:, :n])
        & np.isfinite(r.log_scale[:, :n])[:, :, None]
    )
    cand = np.flatnonzero(ok)
    if cand.size < 500:
        return out
    if cand.size > cfg.lgbm_max_rows:
        rng = np.random.default_rng(seed)
        cand = np.sort(rng.choice(cand, cfg.lgbm_max_rows, replace=False))
    c, j, h = np.unravel_index(cand, ok.shape)
    Xtr, ytr = r.matrix(c, j, h, win.start), r.y[c, j, h]
    params = {
        "objective": "regression",
        "learning_rate": cfg.lgbm_learning_rate,
        "num_leaves": cfg.lgbm_leaves,
        "min_data_in_leaf": 50,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "max_bin": cfg.lgbm_max_bin,
        "num_threads": cfg.lgbm_threads,
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
    }
    ds = lgb.Dataset(Xtr, ytr, params={"max_bin": cfg.lgbm_max_bin, "verbosity": -1})
    booster = lgb.train(params, ds, num_boost_round=cfg.lgbm_rounds)
    pc, ph = np.divmod(np.arange(C * H), H)
    Xp = r.matrix(pc, np.full(C * H, n), ph, win.start)
    pred = np.asarray(booster.predict(Xp, num_threads=cfg.lgbm_threads), float).reshape(C, H)
    return pred * np.exp(r.log_scale[:, n])[:, None]


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
    from threadpoolctl import threadpool_limits

    # OpenBLAS threads spin while they wait: on a busy machine they double the CPU time of
    # the matrix products (TOWT, profiles) for no gain
    tasks: list[Callable[[], dict[str, np.ndarray]]] = []
    if {"caiso_10of10", "high_5of10", "middle_8of10"} & set(methods):
        tasks.append(lambda: x_of_y(panel, win, cfg, ex))
    if "towt" in methods:
        tasks.append(lambda: {"towt": towt(panel, win, cfg, ex)})
    if "lgbm" in methods:  # the longest: started first when methods run side by side
        tasks.insert(0, lambda: {"lgbm": lgbm_baseline(panel, win, cfg, ex)})
    with threadpool_limits(limits=cfg.blas_threads, user_api="blas"):
        if cfg.threads > 1 and len(tasks) > 1:  # numpy and LightGBM release the GIL
            with ThreadPoolExecutor(min(cfg.threads, len(tasks))) as pool:
                for res in pool.map(lambda f: f(), tasks):
                    out.update(res)
        else:
            for f in tasks:
                out.update(f())
    return {m: out[m] for m in methods}
