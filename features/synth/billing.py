"""Bills, payments, contacts, outages, surveys and churn for a chunk of customers.

A monthly process, vectorized over customers (the loop is over months, not rows). At each
monthly snapshot ``s`` a customer leaves during the coming month with hazard

    logit h = -4.0 + 1.8·ps·clip(shock-1) + 2.5·ps·gap + 0.55·complaints_3m + 0.2·outages_3m
              + 0.3·max(7-satisfaction, 0) - 0.45·log1p(tenure_years) - 0.9·engagement
              + 0.5·[arrears] - 0.3·[in DR]

where ``shock`` is the last bill over the mean of the three before it, ``gap`` the competitor's
price advantage, ``ps`` the customer's price sensitivity, and every driver is known at ``s``.
The latent drivers leave behavioural traces, as they do at a real utility: price-sensitive
customers look up rates online (web inquiries, more when the competitor is cheaper), unhappy
ones complain more, and 12 % answer a satisfaction survey each month.
Three true probabilities of leaving within 90 days are stored per snapshot, each
``1 - prod_j (1 - f_j h_j)`` over the months j of the window (``f_j``: the share of month j's
move-out days inside the 90 days), on the path on which the customer stays:

* ``p90_expected`` (the oracle): the next months' hazards averaged over what happens in
  between (outages, complaints, survey answers, unpaid bills, drawn from the customer's state
  at the snapshot), with the next bills taken as they turned out: what the world knows at the
  snapshot, up to the weather;
* ``p90_realised``: the hazards as they turned out (knows the future: an upper bound);
* ``p90``: the snapshot's drivers held, ``1-(1-h)^3`` (ignores the predictable seasonal bill
  shocks, so a model can beat it).

The observed label is whether the account closed within 90 days. A churned customer's meter
stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.schema import TARIFFS
from features.synth.clock import Clock
from features.synth.population import NEVER, Population, days_since_epoch

HORIZON_DAYS = 90


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Billing:
    """Per-chunk outputs of the monthly process (customer indices are chunk-local)."""

    move_out: np.ndarray  # (n,) day since epoch or NEVER
    bill_kwh: np.ndarray  # (n, M)
    bill_amount: np.ndarray  # (n, M), NaN where no bill
    bill_tariff: np.ndarray  # (n, M)
    pay_day: np.ndarray  # (n, M) day paid or NEVER (unpaid)
    pay_amount: np.ndarray
    days_late: np.ndarray
    arrears: np.ndarray
    contacts: dict[str, np.ndarray]  # cust, day, channel idx, kind idx
    outages: dict[str, np.ndarray]  # cust, start_us, minutes
    surveys: dict[str, np.ndarray]  # cust, day, satisfaction
    churn_snap: dict[str, np.ndarray]  # cust, month, churned, p90*, hazard


def monthly_costs(
    kwh_import: np.ndarray,
    kwh_export: np.ndarray,
    region: np.ndarray,
    prices: np.ndarray,
    clock: Clock,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily import, export and energy cost per tariff: (n, D), (n, D), (K, n, D)."""
    cfg = clock.cfg
    n, D, spd = kwh_import.shape[0], cfg.days, cfg.steps_per_day
    daily_imp = kwh_import.reshape(n, D, spd).sum(axis=2)
    daily_exp = kwh_export.reshape(n, D, spd).sum(axis=2)
    cost = np.zeros((prices.shape[0], n, D), np.float32)
    for r in np.unique(region):
        rows = np.flatnonzero(region == r)
        sub = kwh_import[rows]
        for k in range(prices.shape[0]):
            cost[k, rows] = (sub * prices[k, r]).reshape(rows.size, D, spd).sum(axis=2)
    return daily_imp, daily_exp, cost


def simulate_billing(
    pop: Population,
    clock: Clock,
    kwh_import: np.ndarray,
    kwh_export: np.ndarray,
    prices: np.ndarray,
    gap: np.ndarray,
    tariff_by_month: np.ndarray,
    in_dr: np.ndarray,
    rng: np.random.Generator,
) -> Billing:
    """Run the monthly process for a chunk; loads are the full (pre-churn) loads."""
    cfg = clock.cfg
    n, M = pop.n, len(clock.months)
    day0 = days_since_epoch(cfg.start)
    mstart = clock.month_starts_day
    mend = np.append(mstart[1:], cfg.days)
    daily_imp, daily_exp, cost = monthly_costs(kwh_import, kwh_export, pop.region, prices, clock)
    tar = cfg.tariffs
    tariff_day = tariff_by_month[:, clock.month_of_day]  # (n, D)
    energy_cost = np.take_along_axis(
        cost.transpose(1, 0, 2), tariff_day[:, None, :].astype(np.intp), 1
    )[:, 0]
    day_amount = energy_cost + tar.standing_charge_per_day - daily_exp * tar.export_credit

    move_out = np.full(n, NEVER, np.int64)
    bill_amount_full = np.add.reduceat(day_amount, mstart, axis=1)
    shocks = bill_shocks(bill_amount_full)
    arrears = np.zeros((n, M), np.float32)
    pay_day = np.full((n, M), NEVER, np.int64)
    pay_amount = np.zeros((n, M), np.float32)
    days_late = np.zeros((n, M), np.int16)
    complaints = np.zeros((n, M), np.float32)
    outage_n = np.zeros((n, M), np.float32)
    outage_min = np.zeros((n, M), np.float32)
    complaints_stay = np.zeros((n, M), np.float32)
    outage_stay = np.zeros((n, M), np.float32)
    sat = pop.satisfaction0.copy()
    # the path on which every customer stays: drivers of the hazards a leaver would have faced
    # (equal to the recorded ones while a customer is active)
    sat_all = sat.copy()
    balance_all = np.zeros(n, np.float32)
    hazard_all = np.zeros((n, M), np.float32)
    sat_at = np.zeros((n, M), np.float32)  # that path's state at each snapshot
    owing_at = np.zeros((n, M), bool)
    # draws only that path needs come from their own stream: the recorded world is the same
    # with or without them (numpy's Poisson consumes a rate-dependent number of draws, so the
    # recorded draws keep the recorded path's rates)
    stay_rng = rng.spawn(1)[0]
    contacts: dict[str, list[np.ndarray]] = {"cust": [], "day": [], "channel": [], "kind": []}
    outages: dict[str, list[np.ndarray]] = {"cust": [], "start_us": [], "minutes": []}
    surveys: dict[str, list[np.ndarray]] = {"cust": [], "day": [], "satisfaction": []}
    snap: dict[str, list[np.ndarray]] = {
        k: [] for k in ("cust", "month", "churned", "p90", "hazard")
    }
    ps, eng = pop.price_sensitivity, pop.engagement
    low_income = pop.income == 0
    balance = np.zeros(n, np.float32)
    for m in range(M):
        s = day0 + int(mstart[m])
        days_in = int(mend[m] - mstart[m])
        active = move_out >= s
        shock = shocks[:, m]
        # payment of the bill issued at this snapshot (for month m-1)
        if m >= 1:
            bill = np.maximum(bill_amount_full[:, m - 1], 0)  # a credit (solar) needs no payment
            p_late = _sigmoid(-2.6 + 1.2 * low_income + 0.8 * np.clip(shock - 1, 0, 2))
            late = rng.random(n) < p_late
            unpaid = rng.random(n) < 0.03 * low_income + 0.004
            dl = np.where(late, rng.geometric(0.12, n), 0).astype(np.int16)
            paid = active & ~unpaid
            pay_day[paid, m - 1] = s + 21 + dl[paid]
            pay_amount[:, m - 1] = np.where(paid, bill + 0.5 * balance, 0)
            days_late[:, m - 1] = np.where(paid, dl, 0)
            balance = np.where(paid, 0.5 * balance, balance + np.where(active, bill, 0)).astype(
                np.float32
            )
            balance_all = np.where(unpaid, balance_all + bill, 0.5 * balance_all).astype(np.float32)
            arrears[:, m - 1] = balance
        lo, hi = max(0, m - 3), m
        comp3 = complaints_stay[:, lo:hi].sum(axis=1)
        out3 = outage_stay[:, lo:hi].sum(axis=1)
        tenure_y = (s - pop.tenure_start) / 365.25
        h = _hazard(
            ps, eng, shock, gap[m], comp3, out3, sat_all, tenure_y, balance_all > 0, in_dr[:, m]
        )
        hazard_all[:, m] = h
        sat_at[:, m], owing_at[:, m] = sat_all, balance_all > 0
        leave = active & (rng.random(n) < h)
        move_out[leave] = s + 1 + rng.integers(0, max(days_in - 1, 1), leave.sum())
        idx = np.flatnonzero(active)
        snap["cust"].append(idx)
        snap["month"].append(np.full(idx.size, m, np.int32))
        snap["p90"].append((1 - (1 - h[idx]) ** 3).astype(np.float32))
        snap["hazard"].append(h[idx])
        # what happens during the month (seen only by later snapshots)
        storms = rng.random(len(cfg.regions)) < 0.15
        rate = 0.05 + 0.4 * storms[pop.region]
        k_all = rng.poisson(rate)
        outage_n[:, m] = np.where(active, k_all, 0)
        outage_stay[:, m] = k_all
        o_cust = np.repeat(np.arange(n), outage_n[:, m].astype(np.int64))
        o_min = rng.lognormal(4.3, 1.0, o_cust.size).astype(np.float32)
        np.add.at(outage_min[:, m], o_cust, o_min)
        minutes_stay = outage_min[:, m].astype(np.float64)
        o_left = np.repeat(np.arange(n), np.where(active, 0, k_all))
        np.add.at(minutes_stay, o_left, stay_rng.lognormal(4.3, 1.0, o_left.size))
        o_start = (s + rng.integers(0, days_in, o_cust.size)) * 86_400_000_000 + rng.integers(
            0, 86_400, o_cust.size
        ) * 1_000_000
        outages["cust"].append(o_cust)
        outages["start_us"].append(o_start.astype(np.int64))
        outages["minutes"].append(np.round(o_min, 1))
        excess = np.clip(shock - 1.15, 0, 3)
        lam = {
            ("call", "billing"): 0.05 + 0.5 * excess,
            ("call", "outage_report"): 0.3 * outage_n[:, m],
            ("call", "complaint"): _complaint_rate(shock, outage_min[:, m] > 240, balance > 0, sat),
            ("web", "login"): 2.5 * eng**1.5,
            ("app", "login"): 1.5 * eng**2,
            ("email", "inquiry"): 0.04 + 0.1 * eng,
            # price-sensitive customers compare rates online, more so when the competitor
            # is cheaper: the behavioural trace of the latent price sensitivity
            ("web", "inquiry"): 0.2 * ps * (1 + 8 * max(float(gap[m]), 0.0)),
        }
        for (ch, kind), lm in lam.items():
            cnt = np.where(active, rng.poisson(lm), 0)
            if kind == "complaint":
                complaints[:, m] = cnt
                lam_stay = _complaint_rate(shock, minutes_stay > 240, balance_all > 0, sat_all)
                complaints_stay[:, m] = np.where(active, cnt, stay_rng.poisson(lam_stay))
            c = np.repeat(np.arange(n), cnt)
            contacts["cust"].append(c)
            contacts["day"].append(s + rng.integers(0, days_in, c.size))
            contacts["channel"].append(np.full(c.size, ch))
            contacts["kind"].append(np.full(c.size, kind))
        respond_all = rng.random(n) < 0.12
        respond = active & respond_all
        noise = rng.normal(0, 1, n)
        new_sat = _survey_score(
            pop.satisfaction0, complaints[:, m], outage_n[:, lo : m + 1].sum(axis=1), shock, noise
        )
        stay_sat = _survey_score(
            pop.satisfaction0,
            complaints_stay[:, m],
            outage_stay[:, lo : m + 1].sum(axis=1),
            shock,
            noise,
        )
        sat = np.where(respond, new_sat, sat)
        sat_all = np.where(respond_all, stay_sat, sat_all)
        r = np.flatnonzero(respond)
        surveys["cust"].append(r)
        surveys["day"].append(s + rng.integers(0, days_in, r.size))
        surveys["satisfaction"].append(new_sat[r].astype(np.int8))

    # labels: left within 90 days after each snapshot (only snapshots fully observed)
    snaps_abs = day0 + mstart
    cust = np.concatenate(snap["cust"])
    month = np.concatenate(snap["month"])
    churned = (move_out[cust] > snaps_abs[month]) & (
        move_out[cust] <= snaps_abs[month] + HORIZON_DAYS
    )
    p90_realised = _realised_p90(hazard_all, mstart, mend, cust, month)
    expected = expected_p90(
        _StayPath(
            hazard_all, shocks, bill_amount_full, complaints_stay, outage_stay, sat_at, owing_at
        ),
        pop,
        gap,
        in_dr,
        day0 + mstart,
        mend - mstart,
        rng.spawn(1)[0],
    )
    p90_expected = expected[cust, month]
    # final bills: only days before move-out are billed
    day_abs = day0 + np.arange(cfg.days)
    billed = day_abs[None, :] < move_out[:, None]
    bill_kwh = np.add.reduceat(np.where(billed, daily_imp, 0), mstart, axis=1)
    amount = np.add.reduceat(np.where(billed, day_amount, 0), mstart, axis=1)
    has_bill = np.add.reduceat(billed, mstart, axis=1) > 0
    amount = np.where(has_bill, amount, np.nan)

    def cat(d: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in d.items()}

    return Billing(
        move_out=move_out,
        bill_kwh=bill_kwh.astype(np.float32),
        bill_amount=amount.astype(np.float32),
        bill_tariff=tariff_by_month,
        pay_day=pay_day,
        pay_amount=pay_amount,
        days_late=days_late,
        arrears=arrears,
        contacts=cat(contacts),
        outages=cat(outages),
        surveys=cat(surveys),
        churn_snap={
            "cust": cust,
            "month": month,
            "churned": churned,
            "p90": np.concatenate(snap["p90"]),
            "p90_realised": p90_realised,
            "p90_expected": p90_expected,
            "hazard": np.concatenate(snap["hazard"]),
        },
    )


def _hazard(
    ps: np.ndarray,
    eng: np.ndarray,
    shock: np.ndarray,
    gap: float,
    comp3: np.ndarray,
    out3: np.ndarray,
    sat: np.ndarray,
    tenure_y: np.ndarray,
    owing: np.ndarray,
    in_dr: np.ndarray,
) -> np.ndarray:
    """The monthly churn hazard (the formula of the module docstring); broadcasts."""
    logit = (
        -4.0
        + 1.8 * ps * np.clip(shock - 1, -0.3, 1.5)
        + 2.5 * ps * gap
        + 0.55 * comp3
        + 0.2 * out3
        + 0.3 * np.clip(7 - sat, 0, None)
        - 0.45 * np.log1p(np.maximum(tenure_y, 0))
        - 0.9 * eng
        + 0.5 * owing
        - 0.3 * in_dr
    )
    return _sigmoid(logit).astype(np.float32)


def _complaint_rate(
    shock: np.ndarray, long_outage: np.ndarray, owing: np.ndarray, sat: np.ndarray
) -> np.ndarray:
    """Expected complaint calls in a month."""
    return (
        0.012
        + 0.35 * np.clip(shock - 1.25, 0, 3)
        + 0.15 * long_outage
        + 0.05 * owing
        + 0.04 * np.clip(7 - sat, 0, None)
    )


def _survey_score(
    sat0: np.ndarray,
    complaints: np.ndarray,
    outages4: np.ndarray,
    shock: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """A survey answer given the month's complaints and the last four months' outages."""
    raw = sat0 - 1.2 * complaints - 0.4 * outages4 - 1.5 * np.clip(shock - 1, 0, 2) + noise
    return np.clip(np.round(raw), 0, 10).astype(np.float32)


def bill_shocks(bill_amount: np.ndarray) -> np.ndarray:
    """Each snapshot's last bill over the mean of the (up to) three before it; 1 before month 2."""
    n, M = bill_amount.shape
    out = np.ones((n, M), np.float32)
    for m in range(2, M):
        prev = bill_amount[:, max(0, m - 4) : m - 1].mean(axis=1)
        out[:, m] = bill_amount[:, m - 1] / np.maximum(prev, 1.0)
    return out


@dataclass
class _StayPath:
    """The path on which every customer stays: hazards, drivers and state at each snapshot."""

    hazard: np.ndarray  # (n, M)
    shocks: np.ndarray
    bill_amount: np.ndarray
    complaints: np.ndarray  # per month, drawn for every customer
    outages: np.ndarray
    sat_at: np.ndarray  # satisfaction at each snapshot
    owing_at: np.ndarray  # arrears after the snapshot's payment


def _window_sum(
    by_month: dict[int, np.ndarray], lo: int, hi: int, shape: tuple[int, int]
) -> np.ndarray:
    """Sum of months ``max(lo, 0) .. hi-1`` of per-month draws."""
    total = np.zeros(shape)
    for i in range(max(lo, 0), hi):
        total = total + by_month[i]
    return total


def _window_share(
    snap_start: np.ndarray | int, month_start: np.ndarray | int, month_days: np.ndarray | int
) -> np.ndarray:
    """Share of a month's move-out days (days 1 .. days-1 of the month, uniformly: see the
    leave draw) within 90 days of the snapshot; broadcasts."""
    return np.clip(
        (snap_start + HORIZON_DAYS - month_start) / np.maximum(month_days - 1, 1), 0.0, 1.0
    )


def expected_p90(
    path: _StayPath,
    pop: Population,
    gap: np.ndarray,
    in_dr: np.ndarray,
    snap_day: np.ndarray,
    month_days: np.ndarray,
    rng: np.random.Generator,
    draws: int = 32,
) -> np.ndarray:
    """P(move-out within 90 days of each snapshot | everything the world holds at it): (n, M).

    The snapshot's own hazard is known; the next months' hazards depend on what happens in
    between (outages, complaints, survey answers, unpaid bills), which is drawn ``draws``
    times from the customer's state at the snapshot with the generator's own rules. The next
    bills, the competitor's prices and DR enrolment are taken as they turned out (usage
    follows the season and the weather, which this takes as given). This is the oracle: no
    model can know more at the snapshot, up to the weather.
    """
    n, M = path.hazard.shape
    K = draws
    region = pop.region
    n_regions = int(region.max()) + 1 if n else 1
    unpaid_p = 0.03 * (pop.income == 0) + 0.004
    out = np.zeros((n, M), np.float32)
    for m in range(M):
        survive = np.broadcast_to(1.0 - path.hazard[:, m], (K, n)).copy()
        sat = np.broadcast_to(path.sat_at[:, m], (K, n)).copy()
        owing_bal = np.where(path.owing_at[:, m], 1.0, 0.0)  # only "owes or not" matters...
        owe = np.broadcast_to(owing_bal, (K, n)).copy()  # ...and halving keeps it positive
        comp = {j: np.broadcast_to(path.complaints[:, j], (K, n)) for j in range(max(0, m - 3), m)}
        outn = {j: np.broadcast_to(path.outages[:, j], (K, n)) for j in range(max(0, m - 3), m)}
        for k in range(1, 4):
            j = m + k - 1  # the month whose events are drawn; the hazard is that of j + 1
            if j + 1 >= M:
                break
            storms = rng.random((K, n_regions)) < 0.15
            cnt = rng.poisson(0.05 + 0.4 * storms[:, region])
            minutes = np.zeros((K, n))
            left = cnt.copy()
            while left.any():
                minutes += np.where(left > 0, rng.lognormal(4.3, 1.0, (K, n)), 0.0)
                left = np.maximum(left - 1, 0)
            outn[j] = cnt
            shock = path.shocks[:, j]
            comp[j] = rng.poisson(_complaint_rate(shock, minutes > 240, owe > 0, sat))
            respond = rng.random((K, n)) < 0.12
            outages4 = _window_sum(outn, j - 3, j + 1, (K, n))
            new = _survey_score(
                pop.satisfaction0, comp[j], outages4, shock, rng.normal(0, 1, (K, n))
            )
            sat = np.where(respond, new, sat)
            unpaid = rng.random((K, n)) < unpaid_p
            owe = np.where(unpaid, owe + np.maximum(path.bill_amount[:, j], 0), 0.5 * owe)
            t = j + 1
            comp3 = _window_sum(comp, t - 3, t, (K, n))
            out3 = _window_sum(outn, t - 3, t, (K, n))
            tenure_y = (snap_day[t] - pop.tenure_start) / 365.25
            h = _hazard(
                pop.price_sensitivity,
                pop.engagement,
                path.shocks[:, t],
                gap[t],
                comp3,
                out3,
                sat,
                tenure_y,
                owe > 0,
                in_dr[:, t],
            )
            survive *= 1.0 - _window_share(snap_day[m], snap_day[t], month_days[t]) * h
        out[:, m] = 1.0 - survive.mean(axis=0)
    return out


def _realised_p90(
    hazard: np.ndarray, mstart: np.ndarray, mend: np.ndarray, cust: np.ndarray, month: np.ndarray
) -> np.ndarray:
    """P(move-out within 90 days of snapshot ``month``) under the hazards actually faced.

    Leaving in month j moves out on one of days ``s_j+1 .. s_j+L_j`` (``L_j`` = days in the
    month - 1) uniformly, so month j counts with the share ``f_j`` of those days inside the
    window; months past the data count as 0 (their snapshots are not labelled).
    """
    M = hazard.shape[1]
    survive = np.ones(cust.size)
    for k in range(4):  # the snapshot's month and up to three more reach day 90
        j = month + k
        inside = j < M
        jj = np.minimum(j, M - 1)
        f = _window_share(mstart[month], mstart[jj], mend[jj] - mstart[jj])
        survive *= 1.0 - np.where(inside, f * hazard[cust, jj], 0.0)
    return (1.0 - survive).astype(np.float32)


def price_arrays(clock: Clock) -> np.ndarray:
    """Price per kWh of each tariff (in TARIFFS order) per region and interval: (K, R, T)."""
    cfg = clock.cfg
    t = cfg.tariffs
    sph = 60 // cfg.interval_minutes
    R, T = len(cfg.regions), clock.n_steps
    prices = np.empty((len(TARIFFS), R, T), np.float32)
    for r in range(R):
        hour = clock.tod[r] // sph
        workday = ~clock.weekend[r, clock.day_index[r]]
        peak = workday & (hour >= t.peak_start) & (hour < t.peak_end)
        prices[TARIFFS.index("flat"), r] = t.flat_price
        prices[TARIFFS.index("tou"), r] = np.where(peak, t.tou_peak, t.tou_offpeak)
        prices[TARIFFS.index("ev"), r] = np.where(hour < 6, t.ev_overnight, t.ev_day)
        prices[TARIFFS.index("dynamic"), r] = t.flat_price
    if cfg.scenario == "price_rise":
        s = (cfg.effective_scenario_start - cfg.start).days * cfg.steps_per_day
        prices[:, :, s:] *= 1.25
    return prices


def competitor_gap(clock: Clock, rng: np.random.Generator) -> np.ndarray:
    """The competitor's monthly price advantage (share of our bill), a slow random walk."""
    M = len(clock.months)
    gap = np.clip(0.03 + np.cumsum(rng.normal(0, 0.012, M)), -0.05, 0.15).astype(np.float32)
    cfg = clock.cfg
    if cfg.scenario == "price_rise":
        first = next(
            i
            for i, m in enumerate(clock.months)
            if m >= cfg.effective_scenario_start.replace(day=1)
        )
        gap[first:] += 0.12
    return gap
