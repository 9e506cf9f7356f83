"""Per (customer, snapshot) sums over day windows, from prefix sums of ``cday``.

Why not SQL: the usage features need, for every snapshot, windows of 30/90/120/365/395 days
that end at the snapshot. As a range join every day is repeated for each snapshot within
400 days (~12×, ~45 M rows for 10k customers) before 25 filtered aggregates: a minute on 2
cores. Days are sorted by (customer, day end), so a window is a slice ``[lo, hi)`` found with
``searchsorted`` and each sum a difference of prefix sums; maxima use ``reduceat`` on the
slices. Only sums, counts and maxima are made here; the feature formulas (means, shares, CV,
trend rule) stay in :func:`groups_sql.usage_sql`. The anomaly count needs each day of the
last 30 against the baseline mean/sd, so it is counted here on those ~30 days per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

DAY_US = 86_400_000_000
WINDOWS_DAYS = (30, 90, 120, 365, 395, 400)
DD_COLUMNS = ("hb", "cb", "n", "c11", "c22", "c12", "c1y", "c2y", "cyy")


def _prefix(x: np.ndarray) -> np.ndarray:
    """Cumulative sum with a leading 0 (so a slice sum is ``p[hi] - p[lo]``)."""
    out = np.zeros(len(x) + 1, np.float64 if x.dtype.kind == "f" else np.int64)
    np.cumsum(x, out=out[1:])
    return out


def _slices(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, day) index pairs of the slices ``[lo, hi)``, one slice per query."""
    length = np.maximum(hi - lo, 0)
    qi = np.repeat(np.arange(len(lo)), length)
    di = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length - lo, length)
    return qi, di


def _centred(
    x: np.ndarray, ok: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Σ(x - mean) and Σ(x - mean)² over the ``ok`` days of each slice (two-pass variance).

    Prefix sums of squares would lose ~1e-7 of a standard deviation to cancellation; the
    slices are short (<= 90 days), so the exact two-pass sums cost one gather.
    """
    qi, di = _slices(lo, hi)
    sel = ok[di]
    qi, v = qi[sel], x[di[sel]]
    n = np.bincount(qi, minlength=len(lo))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(qi, weights=v, minlength=len(lo)) / n
    dev = v - mean[qi]
    return (
        np.bincount(qi, weights=dev, minlength=len(lo)),
        np.bincount(qi, weights=dev * dev, minlength=len(lo)),
    )


def window_stats(
    days: dict[str, np.ndarray], customers: pa.Array, snaps_us: np.ndarray, anomaly_z: float
) -> pa.Table:
    """Window sums per (customer, snapshot) with any day in the last 400 days.

    ``days`` holds cday's columns as numpy, sorted by (customer code ``cc``, day), with
    NaN/0 counts marking NULL; ``customers`` maps ``cc`` to ``customer_id``.
    """
    cc, de = days["cc"], days["day_end"]
    ncust, ns = len(customers), len(snaps_us)
    base = min(int(de.min()) if len(de) else 0, int(snaps_us.min()) - 400 * DAY_US) - 1
    span = max(int(de.max()) if len(de) else 0, int(snaps_us.max())) - base + 1
    if ncust * span >= 2**62:
        raise ValueError("window_stats: customer × time key would overflow int64")
    key = cc.astype(np.int64) * span + (de - base)
    qc = np.repeat(np.arange(ncust, dtype=np.int64), ns)
    qs = np.tile(snaps_us.astype(np.int64), ncust)
    qsi = np.tile(np.arange(1, ns + 1, dtype=np.int32), ncust)

    def pos(t: np.ndarray) -> np.ndarray:  # rows with day_end <= t (per query's customer)
        return np.searchsorted(key, qc * span + (t - base), side="right")

    hi = pos(qs)
    lo = {n: pos(qs - n * DAY_US) for n in WINDOWS_DAYS}
    keep = hi > lo[400]
    qc, qs, qsi, hi = qc[keep], qs[keep], qsi[keep], hi[keep]
    lo = {n: v[keep] for n, v in lo.items()}

    kwh, comp = days["kwh"], days["complete"]
    ck = np.where(comp, kwh, 0.0)
    cn = comp.astype(np.int64)
    wknd = days["weekend"]
    pre: dict[str, np.ndarray] = {
        "cn": _prefix(cn),
        "ck": _prefix(ck),
        "wdn": _prefix(cn * ~wknd),
        "wds": _prefix(ck * ~wknd),
        "wen": _prefix(cn * wknd),
        "wes": _prefix(ck * wknd),
        "rows": _prefix(np.ones(len(kwh), np.int64)),
        "ev": _prefix(days["ev"].astype(np.int64)),
    }
    for f in ("kwh", "kpeak", "keve", "knight", "kexp"):
        pre[f] = _prefix(np.nan_to_num(days[f]))
        pre[f + "_n"] = _prefix((~np.isnan(days[f])).astype(np.int64))
    for f in ("hours", "night_h"):
        pre[f] = _prefix(days[f])

    def win(f: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return pre[f][b] - pre[f][a]

    out: dict[str, pa.Array] = {
        "customer_id": customers.take(pa.array(qc)),
        "si": pa.array(qsi),
        "S": pa.array(qs),
    }
    b30, b90, b120 = lo[30], lo[90], lo[120]
    for n, a, b in (
        ("30", b30, hi),
        ("90", b90, hi),
        ("365", lo[365], hi),
        ("ly", lo[395], lo[365]),
    ):
        out[f"cn{n}"] = pa.array(win("cn", a, b))
        out[f"cs{n}"] = pa.array(win("ck", a, b))
    cd90, cq90 = _centred(kwh, comp, b90, hi)
    out["cd90"], out["cq90"] = pa.array(cd90), pa.array(cq90)
    for f in ("wdn", "wds", "wen", "wes"):
        out[f + "90"] = pa.array(win(f, b90, hi))
    rows90 = win("rows", b90, hi)
    for f in ("kwh", "kpeak", "keve", "knight", "kexp"):
        out[f + "90"] = pa.array(win(f, b90, hi), mask=win(f + "_n", b90, hi) == 0)
    for f in ("hours", "night_h"):
        out[f + "90"] = pa.array(win(f, b90, hi), mask=rows90 == 0)
    out["ev30"] = pa.array(win("ev", b30, hi))
    # max kW over [lo90, hi): reduceat on interleaved bounds, a NaN sentinel for hi == len
    kw = np.append(days["kw_max"].astype(np.float64), np.nan)
    if len(hi):
        bounds = np.empty(2 * len(hi), np.int64)
        bounds[0::2], bounds[1::2] = b90, hi
        kwmax = np.fmax.reduceat(kw, bounds)[0::2]
        kwmax[hi <= b90] = np.nan
    else:
        kwmax = np.empty(0)
    out["kwmax90"] = pa.array(kwmax.astype(np.float32), mask=np.isnan(kwmax))
    # anomalies: complete days of the last 30 with |kWh - mean| / sd > z, the baseline being
    # the complete days 30-120 days back (avg and stddev_samp; no count when sd is NULL)
    bn = win("cn", b120, b30)
    bs = win("ck", b120, b30)
    bd, bq = _centred(kwh, comp, b120, b30)
    with np.errstate(invalid="ignore", divide="ignore"):
        bmean = bs / bn
        bsd = np.sqrt(np.maximum((bq - bd * bd / bn) / (bn - 1), 0.0))
    has_sd = bn >= 2
    out["b_mean"] = pa.array(bmean, mask=bn == 0)
    out["b_sd"] = pa.array(bsd, mask=~has_sd)
    qi, di = _slices(b30, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(kwh[di] - bmean[qi]) / np.where(bsd[qi] == 0, np.nan, bsd[qi])
    hit = comp[di] & (z > anomaly_z)
    anom = np.bincount(qi[hit], minlength=len(hi))
    out["anom30"] = pa.array(anom, mask=~has_sd)
    return pa.table(out)


def hour_windows(
    hour: pa.Table, meter_cust: np.ndarray, imin: np.ndarray, customers: pa.Array, ns: int
) -> tuple[pa.Table, pa.Table]:
    """Hourly kWh of the last 3 and 12 snapshot periods per (customer, snapshot), wide.

    ``hour`` holds the scan's partials (meter ``idx``, period ``p``, weekend, hour, count of
    non-null reads, kWh). They go to a dense (customer, period, day type, hour) array; a
    window of k periods is a difference of cumulative sums along the period axis, which
    replaces the range joins on a per-hour table. Returns ``shwin`` (``h00``..``h23`` and
    ``tot`` over 3 periods; NULL where no non-null read) and ``rwin`` (``k0_00``..``k1_23``
    by weekend flag and hour over 12 periods, and ``hours``), rows only where a read exists.
    """
    ncust = len(customers)
    g = lambda f: hour.column(f).to_numpy(zero_copy_only=False)  # noqa: E731
    idx = g("idx") - 1
    cell = ((meter_cust[idx] * ns + (g("p") - 1)) * 2 + g("weekend").astype(np.int64)) * 24
    cell = cell + g("hr")
    size = ncust * ns * 48
    shape = (ncust, ns, 48)

    def dense(w: np.ndarray | None) -> np.ndarray:
        a = np.bincount(cell, weights=w, minlength=size).reshape(shape)
        c = np.zeros((ncust, ns + 1, 48), a.dtype)
        np.cumsum(a, axis=1, out=c[:, 1:])
        return c

    cnt = g("cnt")
    kwh, nn, rows = dense(g("kwh")), dense(cnt.astype(np.float64)), dense(None)
    mins = dense((cnt * imin[idx]).astype(np.float64))
    tables = []
    for k in (3, 12):
        lo = np.maximum(np.arange(1, ns + 1) - k, 0)
        hi = np.arange(1, ns + 1)
        wk, wn, wr = (a[:, hi] - a[:, lo] for a in (kwh, nn, rows))
        have = wr.sum(axis=2) > 0
        c_i, s_i = np.nonzero(have)
        cols: dict[str, pa.Array] = {
            "customer_id": customers.take(pa.array(c_i)),
            "si": pa.array((s_i + 1).astype(np.int32)),
        }
        wk, wn = wk[c_i, s_i], wn[c_i, s_i]
        if k == 3:
            hk, hn = wk[:, :24] + wk[:, 24:], wn[:, :24] + wn[:, 24:]
            for h in range(24):
                cols[f"h{h:02d}"] = pa.array(hk[:, h], mask=hn[:, h] == 0)
            cols["tot"] = pa.array(hk.sum(axis=1), mask=hn.sum(axis=1) == 0)
        else:
            for j in range(48):
                cols[f"k{j // 24}_{j % 24:02d}"] = pa.array(wk[:, j], mask=wn[:, j] == 0)
            wm = (mins[:, hi] - mins[:, lo])[c_i, s_i]
            cols["hours"] = pa.array(wm.sum(axis=1) / 60.0, mask=wn.sum(axis=1) == 0)
        tables.append(pa.table(cols))
    return tables[0], tables[1]


def degree_day_sums(
    days: dict[str, np.ndarray],
    cust_region: np.ndarray,
    wday: pa.Table,
    customers: pa.Array,
    ns: int,
    pairs: list[tuple[float, float]],
    min_fit_days: int,
) -> pa.Table:
    """Centred sums of the degree-day regressions per (customer, snapshot, balance pair).

    Complete days with a period and a regional daily mean temperature, per (customer,
    period): n, Σy, Σy², Σx1, Σx2, Σx1², Σx2², Σx1x2, Σx1y, Σx2y for x1 = max(hb - t, 0),
    x2 = max(t - cb, 0) (``np.bincount``); summed over the last 12 periods of each snapshot
    and centred (``c11`` = Σx1² - (Σx1)²/n ...) exactly like the SQL it replaced; rows with
    n >= ``min_fit_days``. ``cust_region`` is the region code per customer code (-1: none);
    ``wday`` has ``rc`` (region code), ``d`` and ``t``. The fits stay in
    :func:`groups_sql.ddfit_sql`.
    """
    ncust = len(customers)
    if ncust == 0 or not pairs or len(days["d"]) == 0:
        empty = {k: pa.array([], pa.float64()) for k in DD_COLUMNS}
        return pa.table(
            {"customer_id": pa.array([], pa.string()), "si": pa.array([], pa.int64()), **empty}
        )
    rc_w = wday.column("rc").to_numpy()
    d_w = wday.column("d").to_numpy().astype(np.int64)
    d = days["d"]
    dmin = int(min(d_w.min(), d.min())) if len(d_w) and len(d) else 0
    dmax = int(max(d_w.max(), d.max())) if len(d_w) and len(d) else 0
    nreg = int(max(rc_w.max() + 1 if len(rc_w) else 0, cust_region.max() + 1, 1))
    temp = np.full((nreg, dmax - dmin + 1), np.nan)
    temp[rc_w, d_w - dmin] = wday.column("t").to_numpy()
    reg = cust_region[days["cc"]]
    p = days["p"]
    ok = days["complete"] & (p >= 1) & (reg >= 0)
    t = np.full(len(d), np.nan)
    t[ok] = temp[reg[ok], d[ok] - dmin]
    ok &= ~np.isnan(t)
    t, y = t[ok], days["kwh"][ok]
    g = days["cc"][ok] * ns + (p[ok] - 1)
    size = ncust * ns

    def per(w: np.ndarray | None) -> np.ndarray:
        return np.bincount(g, weights=w, minlength=size).reshape(ncust, ns)

    hbs = sorted({h for h, _ in pairs})
    cbs = sorted({c for _, c in pairs})
    x1 = {h: np.maximum(h - t, 0.0) for h in hbs}
    x2 = {c: np.maximum(t - c, 0.0) for c in cbs}
    stats: dict[str, np.ndarray] = {"n": per(None), "sy": per(y), "syy": per(y * y)}
    for h in hbs:
        stats[f"s1_{h}"], stats[f"s11_{h}"] = per(x1[h]), per(x1[h] * x1[h])
        stats[f"s1y_{h}"] = per(x1[h] * y)
    for c in cbs:
        stats[f"s2_{c}"], stats[f"s22_{c}"] = per(x2[c]), per(x2[c] * x2[c])
        stats[f"s2y_{c}"] = per(x2[c] * y)
    for h, c in pairs:
        stats[f"s12_{h}_{c}"] = per(x1[h] * x2[c])
    names = list(stats)
    cube = np.stack([stats[k] for k in names], axis=2)  # (customer, period, stat)
    win = np.stack([cube[:, max(0, s - 12) : s].sum(axis=1) for s in range(1, ns + 1)], axis=1)
    w = {k: win[:, :, i] for i, k in enumerate(names)}
    c_i, s_i = np.nonzero(w["n"] >= min_fit_days)
    parts = []
    for h, c in pairs:
        n = w["n"][c_i, s_i]
        sy, s1, s2 = w["sy"][c_i, s_i], w[f"s1_{h}"][c_i, s_i], w[f"s2_{c}"][c_i, s_i]
        parts.append(
            {
                "c": c_i,
                "s": s_i,
                "hb": np.full(len(c_i), float(h)),
                "cb": np.full(len(c_i), float(c)),
                "n": n,
                "c11": w[f"s11_{h}"][c_i, s_i] - s1 * s1 / n,
                "c22": w[f"s22_{c}"][c_i, s_i] - s2 * s2 / n,
                "c12": w[f"s12_{h}_{c}"][c_i, s_i] - s1 * s2 / n,
                "c1y": w[f"s1y_{h}"][c_i, s_i] - s1 * sy / n,
                "c2y": w[f"s2y_{c}"][c_i, s_i] - s2 * sy / n,
                "cyy": w["syy"][c_i, s_i] - sy * sy / n,
            }
        )
    cols = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    out = {
        "customer_id": customers.take(pa.array(cols.pop("c"))),
        "si": pa.array(cols.pop("s") + 1),
    }
    return pa.table({**out, **{k: pa.array(v) for k, v in cols.items()}})
