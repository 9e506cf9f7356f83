"""Program offers and enrollments, tariffs over time, and demand-response events.

Offers are sent at random to a share of eligible, consenting customers each month, so an
offer's effect is identifiable. Each month an eligible customer enrolls with a hazard
``sigmoid(logit0(x) + tau(x) * offer_active)``: ``logit0`` depends on attributes, ``tau`` is the
offer's heterogeneous effect. An offer stays active in its month and the next. The true
90-day enrollment probability at a snapshot is ``1-(1-h0)^3`` without an offer and
``1-(1-h1)^2 (1-h0)`` with one sent at the snapshot; their difference is the true uplift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from features.schema import DWELLING_TYPES, HEATING_FUELS, PROGRAMS, TARIFFS
from features.synth.clock import Clock
from features.synth.population import NEVER, Population, days_since_epoch
from features.synth.weather import Weather

US_PER_DAY = 86_400_000_000
EV_WAVE_SHARE = 0.15


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _month_days(clock: Clock) -> np.ndarray:
    """First day (days since epoch) of each month, plus the exclusive end of the data."""
    first = [days_since_epoch(m) for m in clock.months]
    return np.array([*first, days_since_epoch(clock.cfg.end)], dtype=np.int64)


def apply_ev_wave(pop: Population, clock: Clock, rng: np.random.Generator) -> None:
    """Scenario: a wave of new EVs from the scenario start (mutates ``pop``)."""
    s = days_since_epoch(clock.cfg.effective_scenario_start)
    cand = np.flatnonzero(pop.ev_since > s)
    pick = cand[rng.random(cand.size) < EV_WAVE_SHARE]
    pop.ev_since[pick] = s + rng.integers(0, 30, pick.size)


@dataclass
class Programs:
    """Outcome of the program simulation, consumed by loads, billing and the writers."""

    tariff_by_month: np.ndarray  # (n, M) tariff index in force each month
    dr_since: np.ndarray  # day enrolled in DR (NEVER if not)
    dr_until: np.ndarray  # day left DR (NEVER if still in)
    efficiency_since: np.ndarray  # day an efficiency rebate took effect
    offers: pa.Table
    enrollments: pa.Table
    truth: pa.Table


def _logits(
    pop: Population, ev_now: np.ndarray, hot: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Baseline logit and offer effect (both per customer) for each program."""
    eng, inc, smart = pop.engagement, pop.income, pop.smart_thermostat
    big = (pop.floor_area - 120.0) / 100.0
    return {
        "efficiency_rebate": (
            -5.3 + 1.5 * eng + 0.3 * (inc == 2) + 0.3 * big,
            -0.4 + 2.6 * eng + 0.5 * big,
        ),
        "tou_rate": (
            -5.7 + 1.2 * eng + 0.5 * ev_now + 0.3 * smart,
            -0.2 + 1.8 * eng + 0.8 * ev_now,
        ),
        "ev_rate": (-3.4 + 1.0 * eng, 0.3 + 1.5 * eng),
        "solar": (
            -6.2 + 0.9 * (inc == 2) + 0.6 * eng + 0.4 * hot,
            0.1 + 1.2 * (inc == 2) + 0.8 * hot,
        ),
        "demand_response": (
            -5.5 + 1.4 * eng + 0.6 * smart + 0.4 * pop.has_ac,
            -0.6 + 2.4 * eng + 1.0 * smart,
        ),
        "budget_billing": (-5.9 + 0.9 * (inc == 0), 0.2 + 1.0 * (inc == 0)),
        "paperless": (-4.7 + 2.0 * eng, 0.2 + 1.4 * eng),
    }


def simulate_programs(pop: Population, clock: Clock, rng: np.random.Generator) -> Programs:
    """Run the monthly offer and enrollment process for every customer at once."""
    cfg = clock.cfg
    n = pop.n
    mdays = _month_days(clock)
    M = len(clock.months)
    start = int(mdays[0])
    tariff = pop.tariff0.copy()
    tariff_by_month = np.empty((n, M), np.int8)
    flat, tou, ev = (TARIFFS.index(t) for t in ("flat", "tou", "ev"))
    hot = np.array([r.climate_zone == "hot_dry" for r in cfg.regions])[pop.region]
    detached = pop.dwelling <= DWELLING_TYPES.index("semi_detached")
    elec_heat = np.isin(
        pop.fuel, [HEATING_FUELS.index("electric_resistance"), HEATING_FUELS.index("heat_pump")]
    )
    dr_eligible = pop.has_ac | elec_heat | pop.smart_thermostat

    enrolled = {p: np.zeros(n, bool) for p in PROGRAMS}
    enrolled_at = {p: np.full(n, NEVER, np.int64) for p in PROGRAMS}
    # enrollments that predate the data
    pre = {
        "tou_rate": tariff == tou,
        "ev_rate": tariff == ev,
        "solar": pop.solar_since < start,
        "demand_response": dr_eligible & (rng.random(n) < 0.1),
        "paperless": rng.random(n) < 0.15 + 0.4 * pop.engagement,
        "budget_billing": rng.random(n) < 0.05,
        "efficiency_rebate": rng.random(n) < 0.05,
    }
    for p, m in pre.items():
        enrolled[p] |= m
        enrolled_at[p][m] = np.maximum(pop.tenure_start[m], start - rng.integers(30, 1500, m.sum()))
    dr_until = np.full(n, NEVER, np.int64)
    efficiency_since = np.where(
        enrolled["efficiency_rebate"], enrolled_at["efficiency_rebate"], NEVER
    )

    offer_rows: list[tuple[np.ndarray, int, np.ndarray]] = []
    truth_cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("cust", "prog", "snap", "p0", "p1", "off")
    }
    prev_offer = {p: np.zeros(n, bool) for p in PROGRAMS}
    for m in range(M):
        s, e = int(mdays[m]), int(mdays[m + 1])
        tariff_by_month[:, m] = tariff
        ev_now = pop.ev_since <= s
        solar_now = pop.solar_since <= s
        logits = _logits(pop, ev_now, hot)
        eligible = {
            "efficiency_rebate": ~enrolled["efficiency_rebate"],
            "tou_rate": tariff == flat,
            "ev_rate": ev_now & (tariff != ev),
            "solar": detached & ~solar_now & ~enrolled["solar"],
            "demand_response": dr_eligible & ~enrolled["demand_response"],
            "budget_billing": ~enrolled["budget_billing"],
            "paperless": ~enrolled["paperless"],
        }
        for pi, p in enumerate(PROGRAMS):
            el = eligible[p]
            offered = el & pop.consent_marketing & (rng.random(n) < cfg.programs.offer_share)
            l0, tau = logits[p]
            h0 = _sigmoid(l0)
            h1 = _sigmoid(l0 + tau)
            active = offered | prev_offer[p]
            prev_offer[p] = offered
            join = el & (rng.random(n) < np.where(active, h1, h0))
            idx = np.flatnonzero(offered)
            if idx.size:
                offer_rows.append((idx, pi, s + rng.integers(0, 5, idx.size)))
            eidx = np.flatnonzero(el)
            truth_cols["cust"].append(eidx)
            truth_cols["prog"].append(np.full(eidx.size, pi, np.int8))
            truth_cols["snap"].append(np.full(eidx.size, s, np.int64))
            truth_cols["p0"].append((1 - (1 - h0[eidx]) ** 3).astype(np.float32))
            truth_cols["p1"].append((1 - (1 - h1[eidx]) ** 2 * (1 - h0[eidx])).astype(np.float32))
            truth_cols["off"].append(offered[eidx])
            jidx = np.flatnonzero(join)
            when = s + rng.integers(0, max(e - s, 1), jidx.size)
            enrolled[p][jidx] = True
            enrolled_at[p][jidx] = when
            if p == "tou_rate":
                tariff[jidx] = tou
            elif p == "ev_rate":
                tariff[jidx] = ev
            elif p == "solar":
                pop.solar_since[jidx] = when + rng.integers(30, 90, jidx.size)
            elif p == "efficiency_rebate":
                efficiency_since[jidx] = when + 30
        # a few DR participants drop out each month
        drop = (
            enrolled["demand_response"] & (dr_until == NEVER) & (enrolled_at["demand_response"] < s)
        )
        drop &= rng.random(n) < 0.01
        dr_until[drop] = s + rng.integers(0, max(e - s, 1), drop.sum())

    offers = _offers_table(offer_rows, rng)
    enrollments = _enrollments_table(enrolled_at, dr_until)
    truth = pa.table(
        {
            "customer_idx": np.concatenate(truth_cols["cust"]).astype(np.int64),
            "program": pa.DictionaryArray.from_arrays(
                pa.array(np.concatenate(truth_cols["prog"]).astype(np.int32)), pa.array(PROGRAMS)
            ),
            "snapshot_day": np.concatenate(truth_cols["snap"]),
            "p_no_offer": np.concatenate(truth_cols["p0"]),
            "p_offer": np.concatenate(truth_cols["p1"]),
            "offered": np.concatenate(truth_cols["off"]),
        }
    )
    return Programs(
        tariff_by_month=tariff_by_month,
        dr_since=enrolled_at["demand_response"],
        dr_until=dr_until,
        efficiency_since=efficiency_since,
        offers=offers,
        enrollments=enrollments,
        truth=truth,
    )


def _offers_table(
    rows: list[tuple[np.ndarray, int, np.ndarray]], rng: np.random.Generator
) -> pa.Table:
    if rows:
        cust = np.concatenate([r[0] for r in rows])
        prog = np.concatenate([np.full(r[0].size, r[1], np.int32) for r in rows])
        day = np.concatenate([r[2] for r in rows])
    else:
        cust, prog, day = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
    channels = np.array(["email", "letter", "sms"])
    return pa.table(
        {
            "customer_idx": cust.astype(np.int64),
            "program": pa.DictionaryArray.from_arrays(pa.array(prog), pa.array(PROGRAMS)),
            "sent_day": day.astype(np.int64),
            "channel": channels[rng.integers(0, 3, cust.size)],
        }
    )


def _enrollments_table(enrolled_at: dict[str, np.ndarray], dr_until: np.ndarray) -> pa.Table:
    cust, prog, at, until = [], [], [], []
    for pi, p in enumerate(PROGRAMS):
        idx = np.flatnonzero(enrolled_at[p] < NEVER)
        cust.append(idx)
        prog.append(np.full(idx.size, pi, np.int32))
        at.append(enrolled_at[p][idx])
        until.append(dr_until[idx] if p == "demand_response" else np.full(idx.size, NEVER))
    return pa.table(
        {
            "customer_idx": np.concatenate(cust).astype(np.int64),
            "program": pa.DictionaryArray.from_arrays(
                pa.array(np.concatenate(prog)), pa.array(PROGRAMS)
            ),
            "enrolled_day": np.concatenate(at).astype(np.int64),
            "ended_day": np.concatenate(until).astype(np.int64),
        }
    )


@dataclass
class Events:
    """DR events (per region) and who was called or held back."""

    region: np.ndarray  # (E,) region index
    start_step: np.ndarray  # (E,) first interval index (UTC axis)
    end_step: np.ndarray  # (E,) exclusive
    notified_step: np.ndarray
    incentive: np.ndarray
    fatigue: np.ndarray  # response multiplier from events on the previous days
    cooling: np.ndarray  # summer (cooling) or winter (heating) event
    ids: list[str]
    part_event: np.ndarray  # participant rows: event index
    part_cust: np.ndarray  # customer index
    part_called: np.ndarray  # called (treated) or held back (control)


def plan_events(
    pop: Population, progs: Programs, clock: Clock, weather: Weather, rng: np.random.Generator
) -> Events:
    """Call events on the hottest summer and coldest winter weekdays of each region."""
    cfg = clock.cfg
    spd = cfg.steps_per_day
    sph = 60 // cfg.interval_minutes
    months = np.array([d.month for d in clock.day_dates[: cfg.days]])
    rows: list[tuple[int, int, int, int, float, bool, str]] = []
    for r, reg in enumerate(cfg.regions):
        workday = ~clock.weekend[r, : cfg.days]
        workday[0] = False  # no notice possible before the data starts
        for season, count, cooling in (
            ((6, 7, 8, 9), cfg.dr.summer_events, True),
            ((12, 1, 2), cfg.dr.winter_events, False),
        ):
            pool = np.flatnonzero(np.isin(months, season) & workday)
            if pool.size == 0 or count == 0:
                continue
            score = weather.daily_max[r, pool] if cooling else -weather.daily_min[r, pool]
            days = np.sort(pool[np.argsort(-score)[:count]])
            for d in days:
                hours = int(rng.integers(cfg.dr.min_hours, cfg.dr.max_hours + 1))
                start_h = int(rng.integers(16, 18)) if cooling else int(rng.choice([7, 17]))
                local_step = d * spd + start_h * sph
                start = local_step - reg.utc_offset_hours * sph
                notified = start - 26 * sph
                inc = float(rng.choice(cfg.dr.incentives_per_kwh))
                eid = f"DR-{reg.name}-{clock.day_dates[d]:%Y%m%d}-{start_h:02d}"
                rows.append((r, start, start + hours * sph, notified, inc, cooling, eid))
    rows.sort(key=lambda x: (x[1], x[0]))
    E = len(rows)
    region = np.array([x[0] for x in rows], np.int32)
    start = np.array([x[1] for x in rows], np.int64).clip(0, clock.n_steps)
    end = np.array([x[2] for x in rows], np.int64).clip(0, clock.n_steps)
    notified = np.array([x[3] for x in rows], np.int64)
    fatigue = np.ones(E, np.float32)
    for i in range(E):  # events, not rows: at most a few dozen
        prior = (region[:i] == region[i]) & (start[:i] > start[i] - 3 * spd)
        fatigue[i] = 0.88 ** int(prior.sum())
    parts_e, parts_c, parts_called = [], [], []
    start_day = (clock.ts_us[0] // US_PER_DAY) + notified // spd
    for i in range(E):
        day = int(start_day[i])
        members = np.flatnonzero(
            (pop.region == region[i]) & (progs.dr_since <= day) & (progs.dr_until > day)
        )
        called = rng.random(members.size) >= cfg.dr.control_share
        parts_e.append(np.full(members.size, i, np.int32))
        parts_c.append(members)
        parts_called.append(called)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return Events(
        region=region,
        start_step=start,
        end_step=end,
        notified_step=notified,
        incentive=np.array([x[4] for x in rows], np.float32),
        fatigue=fatigue,
        cooling=np.array([x[5] for x in rows], bool),
        ids=[x[6] for x in rows],
        part_event=cat(parts_e, np.int32),
        part_cust=cat(parts_c, np.int64),
        part_called=cat(parts_called, bool),
    )
