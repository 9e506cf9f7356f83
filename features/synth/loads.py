"""Interval loads of a chunk of homes, summed from appliance components.

Each component is a documented function of the home's attributes, its routine, the weather
and the calendar, computed for all homes of a chunk and all intervals at once (arrays of shape
``(homes, intervals)``, float32). Discrete appliance runs (laundry, dishwasher, EV sessions)
are drawn per home-day and laid down sparsely.

- base: always-on load, ``base_kw`` with 6 % noise.
- refrigerator: compressor duty cycle rising with indoor temperature and activity.
- hvac: a one-node thermal model. Heat loss ``UA × (setpoint − gains − T_eff)``, where
  ``T_eff`` is outdoor temperature through a 3-hour lag (the envelope's mass); setpoints
  are set back while the home is asleep or away; electric resistance (COP 1), heat pump
  (COP falling in the cold), gas or oil furnace fans (5 % of the heat), and AC (COP 3.2)
  with a solar gain term.
- water_heater, cooking: daily energy targets spread by routine-shaped probabilities of
  4.5 kW / 2 kW element runs.
- lighting: ``light_kw × activity × darkness``.
- laundry, dishwasher, ev: runs per home-day with a start time and a duration.
- pool_pump: a daily schedule from 09:00 local, longer in warm weather.
- pv: ``kW × GHI/1000 × performance factor`` after the install date (export when it exceeds
  the load).
DR events cut the HVAC load of called homes by their flexibility (less with fatigue, more
with a bigger incentive), trim discretionary loads, and add a rebound in the hour after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.schema import APPLIANCES, HEATING_FUELS
from features.synth.clock import Clock
from features.synth.population import Population
from features.synth.programs import Events

H = np.array  # shorthand for the hourly templates below
# Activity (at home and awake) by hour, for commuters, home-all-day and late risers.
ACT_WEEKDAY = np.stack(
    [
        H(
            [
                0.05,
                0.04,
                0.04,
                0.04,
                0.05,
                0.15,
                0.5,
                0.8,
                0.35,
                0.1,
                0.08,
                0.08,
                0.1,
                0.08,
                0.08,
                0.1,
                0.3,
                0.65,
                0.9,
                0.95,
                0.9,
                0.8,
                0.5,
                0.15,
            ]
        ),
        H(
            [
                0.05,
                0.04,
                0.04,
                0.04,
                0.05,
                0.1,
                0.3,
                0.65,
                0.6,
                0.55,
                0.55,
                0.6,
                0.65,
                0.55,
                0.5,
                0.55,
                0.65,
                0.8,
                0.9,
                0.9,
                0.85,
                0.75,
                0.45,
                0.12,
            ]
        ),
        H(
            [
                0.3,
                0.15,
                0.06,
                0.04,
                0.04,
                0.04,
                0.05,
                0.1,
                0.3,
                0.55,
                0.4,
                0.15,
                0.1,
                0.1,
                0.1,
                0.15,
                0.3,
                0.6,
                0.85,
                0.9,
                0.9,
                0.85,
                0.75,
                0.55,
            ]
        ),
    ]
)
ACT_WEEKEND = np.stack(
    [
        H(
            [
                0.1,
                0.05,
                0.04,
                0.04,
                0.04,
                0.05,
                0.1,
                0.3,
                0.6,
                0.75,
                0.7,
                0.65,
                0.7,
                0.6,
                0.55,
                0.6,
                0.7,
                0.85,
                0.9,
                0.9,
                0.85,
                0.75,
                0.55,
                0.2,
            ]
        ),
        H(
            [
                0.08,
                0.05,
                0.04,
                0.04,
                0.04,
                0.06,
                0.2,
                0.5,
                0.7,
                0.7,
                0.65,
                0.65,
                0.7,
                0.6,
                0.6,
                0.65,
                0.75,
                0.85,
                0.9,
                0.9,
                0.85,
                0.7,
                0.45,
                0.15,
            ]
        ),
        H(
            [
                0.4,
                0.2,
                0.08,
                0.04,
                0.04,
                0.04,
                0.04,
                0.06,
                0.1,
                0.3,
                0.55,
                0.7,
                0.7,
                0.65,
                0.6,
                0.65,
                0.7,
                0.85,
                0.9,
                0.9,
                0.9,
                0.85,
                0.75,
                0.6,
            ]
        ),
    ]
)
MEALS = H(
    [
        0,
        0,
        0,
        0,
        0,
        0,
        0.3,
        1,
        0.6,
        0.1,
        0.05,
        0.2,
        0.7,
        0.3,
        0.05,
        0.05,
        0.2,
        0.9,
        1,
        0.6,
        0.2,
        0.05,
        0,
        0,
    ]
)
WATER = H(
    [
        0.05,
        0.02,
        0.02,
        0.02,
        0.05,
        0.3,
        1,
        1,
        0.6,
        0.3,
        0.2,
        0.2,
        0.25,
        0.2,
        0.2,
        0.2,
        0.3,
        0.5,
        0.7,
        0.8,
        0.7,
        0.5,
        0.3,
        0.1,
    ]
)
WH_KW = 4.5
COOK_KW = 2.0


@dataclass
class Loads:
    """A chunk's loads: appliance components, PV, metered import/export, DR truth rows."""

    components: dict[str, np.ndarray]  # appliance → (n, T) kWh
    pv: np.ndarray  # (n, T) kWh generated
    kwh_import: np.ndarray  # (n, T)
    kwh_export: np.ndarray  # (n, T)
    effect_part: np.ndarray  # participant row (into the chunk's participant arrays) per truth row
    effect_step: np.ndarray  # interval index per truth row
    effect_cust: np.ndarray  # chunk-local customer index per truth row
    effect_cf: np.ndarray  # counterfactual import kWh per truth row


def _hourly_to_steps(tmpl: np.ndarray, spd: int) -> np.ndarray:
    """Repeat hourly templates (…, 24) to interval resolution (…, spd)."""
    return np.repeat(tmpl, spd // 24, axis=-1) if spd >= 24 else tmpl


def _per_home_profile(tmpl: np.ndarray, kind: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Row ``i`` is template ``kind[i]`` rolled by ``shift[i]`` intervals."""
    spd = tmpl.shape[-1]
    idx = (np.arange(spd)[None, :] - shift[:, None]) % spd
    return tmpl[kind[:, None], idx].astype(np.float32)


def _runs(
    rng: np.random.Generator,
    p_day: np.ndarray,
    start_tod: np.ndarray,
    energy: np.ndarray,
    k_row: np.ndarray,
    offset_steps: np.ndarray,
    spd: int,
    T: int,
) -> np.ndarray:
    """Lay appliance runs down sparsely: ``energy`` over ``k_row`` intervals from the start.

    ``p_day``, ``start_tod`` and ``energy`` are (n, D) per home-day; ``offset_steps`` turns
    local days into the UTC interval axis.
    """
    n = p_day.shape[0]
    out = np.zeros(n * T, np.float32)
    rows, days = np.nonzero(rng.random(p_day.shape, dtype=np.float32) < p_day)
    if rows.size == 0:
        return out.reshape(n, T)
    steps = days.astype(np.int64) * spd + start_tod[rows, days] - offset_steps[rows]
    rep = k_row[rows].astype(np.int64)
    within = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep)
    r2 = np.repeat(rows, rep)
    s2 = np.repeat(steps, rep) + within
    val = np.repeat(energy[rows, days] / rep, rep).astype(np.float32)
    ok = (s2 >= 0) & (s2 < T)
    np.add.at(out, r2[ok] * T + s2[ok], val[ok])
    return out.reshape(n, T)


def chunk_loads(
    pop: Population,
    clock: Clock,
    region_arrays: dict[str, np.ndarray],
    tariff_by_month: np.ndarray,
    efficiency_since: np.ndarray,
    events: Events,
    part_rows: np.ndarray,
    part_local: np.ndarray,
    rng: np.random.Generator,
) -> Loads:
    """Compute every component for the homes in ``pop`` (one chunk).

    ``region_arrays`` holds per-region (R, T) arrays: temp_eff, ghi, tod, weekend, day.
    ``part_rows`` are the DR participant rows of these homes, ``part_local`` their index here.
    """
    cfg = clock.cfg
    n, T, spd, D = pop.n, clock.n_steps, cfg.steps_per_day, cfg.days + 1
    dt = np.float32(clock.dt_h)
    sph = 60 // cfg.interval_minutes
    reg = pop.region.astype(np.intp)
    # one region in the chunk (the usual case: homes are numbered by region): broadcast its
    # (1, T) series; otherwise gather a row per home
    pick = (lambda a: a[reg[:1]]) if (reg == reg[0]).all() else (lambda a: a[reg])  # noqa: E731
    tod = pick(region_arrays["tod"])  # (n or 1, T) int16
    day = pick(region_arrays["day"])  # local day
    temp = pick(region_arrays["temp_eff"])
    ghi = pick(region_arrays["ghi"])
    weekend = pick(region_arrays["weekend"])
    offset = np.array([r.utc_offset_hours * sph for r in cfg.regions], np.int64)[reg]
    utc_day = np.arange(T) // spd  # UTC day per interval (for install / enrollment dates)
    day0 = int(clock.ts_us[0] // 86_400_000_000)

    # routine: activity per interval, with vacations (1-2 trips a year)
    a_wd = _per_home_profile(_hourly_to_steps(ACT_WEEKDAY, spd), pop.archetype, pop.shift_steps)
    a_we = _per_home_profile(_hourly_to_steps(ACT_WEEKEND, spd), pop.archetype, pop.shift_steps)
    act = np.where(weekend, np.take_along_axis(a_we, tod, 1), np.take_along_axis(a_wd, tod, 1))
    trips = 1 + (rng.random(n) < 0.5)
    away = np.zeros((n, D), bool)
    dgrid = np.arange(D)[None, :]
    for _ in range(2):
        s = rng.integers(0, max(D - 5, 1), n)[:, None]
        length = rng.integers(5, 15, n)[:, None]
        away |= (dgrid >= s) & (dgrid < s + length) & (trips[:, None] > _)
    home = np.where(
        np.take_along_axis(away, np.broadcast_to(day, (n, T)), 1), np.float32(0.05), np.float32(1.0)
    )
    act *= home
    z = rng.standard_normal((n, T), dtype=np.float32)

    comp: dict[str, np.ndarray] = {}
    comp["base"] = (pop.base_kw[:, None] * dt) * (1 + 0.06 * z)
    duty = np.clip(0.36 + 0.004 * (temp - 15) + 0.08 * act, 0.2, 0.7)
    comp["refrigerator"] = pop.fridge_kw[:, None] * dt * duty

    # hvac: one-node thermal model
    asleep_or_away = act < 0.2
    heat_set = pop.heat_sp[:, None] - pop.setback[:, None] * asleep_or_away
    cool_set = pop.cool_sp[:, None] + pop.setback[:, None] * asleep_or_away * (act < 0.1)
    ua = np.where(
        utc_day[None, :] + day0 >= efficiency_since[:, None], np.float32(0.88), np.float32(1.0)
    )
    ua *= pop.ua[:, None]
    # internal and solar gains shift the balance points: ~3 K for heating, ~2 K for cooling
    heat_th = np.clip(ua * (heat_set - 3.0 - temp), 0, pop.ua[:, None] * 25)
    cool_th = (
        np.clip(ua * (temp + 0.002 * ghi + 2.0 - cool_set), 0, pop.ua[:, None] * 15)
        * pop.has_ac[:, None]
    )
    fuel = pop.fuel
    cop_hp = np.clip(2.2 + 0.06 * temp, 1.4, 4.0)
    heat_e = np.where(
        (fuel == HEATING_FUELS.index("heat_pump"))[:, None],
        heat_th / cop_hp,
        heat_th
        * np.select(
            [
                fuel == HEATING_FUELS.index("electric_resistance"),
                fuel == HEATING_FUELS.index("none"),
            ],
            [1.0, 0.0],
            0.05,
        ).astype(np.float32)[:, None],
    )
    comp["hvac"] = (heat_e + cool_th / 3.2) * dt * (1 + 0.05 * z)

    # water heating and cooking: daily energy spread by routine-shaped run probabilities
    season = np.float32(1.0) + 0.2 * np.cos(2 * np.pi * (utc_day + day0 - 15) / 365.25).astype(
        np.float32
    )
    water = np.broadcast_to(
        _hourly_to_steps(WATER / WATER.sum(), spd).astype(np.float32)[tod], (n, T)
    )
    meals = np.broadcast_to(
        _hourly_to_steps(MEALS / MEALS.sum(), spd).astype(np.float32)[tod], (n, T)
    )
    for name, kw, daily, shape, has in (
        ("water_heater", WH_KW, 1.2 + 1.1 * pop.occupants, water, pop.electric_wh),
        ("cooking", COOK_KW, 0.5 + 0.25 * pop.occupants, meals, pop.electric_cooking),
    ):
        target = (daily * has).astype(np.float32)[:, None] * shape * (0.3 + 0.7 * home)
        if name == "water_heater":
            target *= season
        q = np.minimum(target / np.float32(kw * dt * 0.7), np.float32(1.0))
        u = rng.random((n, T), dtype=np.float32)
        hit = np.nonzero(u < q)  # runs are sparse: compute their energy only where they happen
        qh = q[hit]
        out = np.zeros((n, T), np.float32)
        out[hit] = target[hit] / qh * (0.6 + 0.8 * u[hit] / qh)
        comp[name] = out

    dark = np.clip(1.0 - ghi / 150.0, 0, 1)
    comp["lighting"] = pop.light_kw[:, None] * dt * act * dark

    # discrete runs per home-day
    local_days = D
    home_day = np.where(away, 0.05, 1.0)
    tod_h = rng.integers(9, 21, (n, local_days)) * sph
    laundry_e = (0.5 + 2.0 * pop.electric_dryer).astype(np.float32)[:, None] * rng.uniform(
        0.7, 1.3, (n, local_days)
    ).astype(np.float32)
    comp["laundry"] = _runs(
        rng,
        np.minimum(0.9, (0.8 + 0.7 * pop.occupants[:, None]) / 7) * home_day,
        tod_h,
        laundry_e,
        np.full(n, 2 * sph),
        offset,
        spd,
        T,
    )
    dw_start = rng.integers(19, 23, (n, local_days)) * sph
    comp["dishwasher"] = _runs(
        rng,
        (np.minimum(0.9, 0.35 + 0.1 * pop.occupants) * pop.has_dishwasher)[:, None] * home_day,
        dw_start,
        np.full((n, local_days), 1.1, np.float32),
        np.full(n, max(1, round(1.5 * sph))),
        offset,
        spd,
        T,
    )
    # pool pump: from 09:00 local, 4 h in the cold up to 9 h in the heat
    pool_hours = np.clip(4 + 5 * (temp - 12) / 12, 4, 9)
    pool_on = ((tod >= 9 * sph) & (tod < 9 * sph + pool_hours * sph)).astype(np.float32) * (
        1.1 * dt
    )
    comp["pool_pump"] = pop.has_pool.astype(np.float32)[:, None] * pool_on
    # EV: sessions on arrival in the evening, or at midnight on the EV tariff
    days_abs = day0 + np.arange(local_days)[None, :]
    has_ev_day = days_abs >= pop.ev_since[:, None]
    month_idx = clock.month_of_day[np.minimum(np.arange(local_days), cfg.days - 1)]
    ev_tariff_day = tariff_by_month[:, month_idx] == 2  # TARIFFS.index("ev")
    ev_start = np.where(
        ev_tariff_day,
        rng.integers(0, 2, (n, local_days)) * sph // 2,
        rng.integers(17, 22, (n, local_days)) * sph,
    )
    ev_p = np.where(clock.weekend[reg][:, :local_days], 0.35, 0.55)
    ev_e = pop.ev_session_kwh[:, None] * rng.uniform(0.6, 1.4, (n, local_days)).astype(np.float32)
    k_ev = np.ceil(pop.ev_session_kwh / (pop.ev_kw * dt)).astype(np.int64).clip(1, None)
    comp["ev"] = _runs(rng, ev_p * has_ev_day * home_day, ev_start, ev_e, k_ev, offset, spd, T)

    pv = (
        pop.solar_kw[:, None]
        * (ghi / 1000.0)
        * pop.pv_factor[:, None]
        * dt
        * (utc_day[None, :] + day0 >= pop.solar_since[:, None])
    ).astype(np.float32)

    # DR events: called homes shed HVAC and discretionary load, then rebound
    eff = _apply_events(comp, pop, events, part_rows, part_local, T, sph)
    total = np.zeros((n, T), np.float32)
    for a in APPLIANCES:
        total += comp[a]
    kwh_import = np.maximum(total - pv, 0)
    kwh_export = np.maximum(pv - total, 0)
    cust, steps, part, cf_total = eff
    cf_import = np.maximum(cf_total - pv[cust, steps], 0) if cust.size else np.zeros(0, np.float32)
    return Loads(comp, pv, kwh_import, kwh_export, part, steps, cust, cf_import.astype(np.float32))


def _apply_events(
    comp: dict[str, np.ndarray],
    pop: Population,
    events: Events,
    part_rows: np.ndarray,
    part_local: np.ndarray,
    T: int,
    sph: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply event responses in place; return truth positions and counterfactual totals."""
    if part_rows.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, np.zeros(0, np.float32)
    ev = events.part_event[part_rows]
    start, end = events.start_step[ev], events.end_step[ev] + sph  # include the rebound hour
    rep = (end - start).astype(np.int64)
    within = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep)
    steps = np.repeat(start, rep) + within
    cust = np.repeat(part_local, rep)
    part = np.repeat(np.arange(part_rows.size), rep)
    in_event = steps < np.repeat(events.end_step[ev], rep)
    ok = steps < T
    steps, cust, part, in_event = steps[ok], cust[ok], part[ok], in_event[ok]
    cf_total = np.zeros(steps.size, np.float32)
    for a in APPLIANCES:
        cf_total += comp[a][cust, steps]
    called = events.part_called[part_rows][part]
    e = ev[part]
    inc_factor = 0.75 + 0.25 * np.minimum(events.incentive[e] / 2.0, 1.0)
    shed = np.clip(pop.flexibility[cust] * events.fatigue[e] * inc_factor, 0, 0.95)
    hvac = comp["hvac"]
    # mean shed kWh per interval of each participant row, for the rebound
    shed_kwh = np.where(in_event & called, hvac[cust, steps] * shed, 0).astype(np.float32)
    per_row = np.bincount(part, weights=shed_kwh, minlength=part_rows.size)
    n_in = np.maximum(np.bincount(part, weights=in_event, minlength=part_rows.size), 1)
    rebound = np.where(~in_event & called, 0.35 * (per_row / n_in)[part], 0).astype(np.float32)
    hvac[cust, steps] = hvac[cust, steps] - shed_kwh + rebound
    for a in ("laundry", "dishwasher", "cooking"):
        c = comp[a]
        c[cust, steps] = np.where(
            in_event & called, c[cust, steps] * (1 - 0.4 * pop.flexibility[cust]), c[cust, steps]
        )
    return cust, steps, part, cf_total
