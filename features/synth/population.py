"""Customers, premises and the latent traits behind their loads and behaviour.

Every attribute is drawn for all customers at once (arrays, no row loops). Probabilities
depend on the region's climate and the dwelling, so that attributes correlate the way they do
in a real service territory (pools in hot regions, heat pumps where winters are mild, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta

import numpy as np

from features.schema import DWELLING_TYPES, HEATING_FUELS, TARIFFS
from features.synth.config import WorldConfig

INCOME_BANDS = ("low", "middle", "high")
# Heating fuel mix per climate zone (gas, electric_resistance, heat_pump, oil, none)
FUEL_MIX = {
    "marine": (0.55, 0.15, 0.20, 0.02, 0.08),
    "hot_dry": (0.45, 0.20, 0.30, 0.0, 0.05),
    "cold": (0.62, 0.12, 0.14, 0.10, 0.02),
}
AC_RATE = {"marine": 0.35, "hot_dry": 0.92, "cold": 0.55}
POOL_RATE = {"marine": 0.04, "hot_dry": 0.16, "cold": 0.03}
# detached, semi_detached, terraced, apartment, mobile_home
DWELLING_MIX = (0.52, 0.12, 0.10, 0.22, 0.04)
AREA_MEDIAN_M2 = (175.0, 130.0, 110.0, 75.0, 90.0)
DAY0 = date(1970, 1, 1)


def days_since_epoch(d: date) -> int:
    return (d - DAY0).days


@dataclass
class Population:
    """Struct of arrays: one entry per customer. Dates are int days since 1970-01-01."""

    region: np.ndarray  # int index into cfg.regions
    dwelling: np.ndarray  # index into DWELLING_TYPES
    floor_area: np.ndarray
    build_year: np.ndarray
    occupants: np.ndarray
    fuel: np.ndarray  # index into HEATING_FUELS
    has_ac: np.ndarray
    has_pool: np.ndarray
    ev_since: np.ndarray  # day or a large sentinel when never
    solar_since: np.ndarray
    solar_kw: np.ndarray
    smart_thermostat: np.ndarray
    income: np.ndarray  # index into INCOME_BANDS
    tenure_start: np.ndarray
    tariff0: np.ndarray  # tariff index at the start
    consent_marketing: np.ndarray
    consent_email: np.ndarray
    consent_sms: np.ndarray
    consent_data_sharing: np.ndarray
    electric_wh: np.ndarray  # electric water heater
    electric_cooking: np.ndarray
    has_dishwasher: np.ndarray
    electric_dryer: np.ndarray
    archetype: np.ndarray  # 0 commuter, 1 home all day, 2 late riser
    shift_steps: np.ndarray  # routine shift in intervals
    base_kw: np.ndarray
    fridge_kw: np.ndarray
    light_kw: np.ndarray
    ev_kw: np.ndarray
    ev_session_kwh: np.ndarray
    pv_factor: np.ndarray
    heat_sp: np.ndarray
    cool_sp: np.ndarray
    setback: np.ndarray
    ua: np.ndarray  # kW per K
    flexibility: np.ndarray
    price_sensitivity: np.ndarray
    engagement: np.ndarray
    satisfaction0: np.ndarray

    @property
    def n(self) -> int:
        return int(self.region.shape[0])

    def take(self, idx: np.ndarray | slice) -> Population:
        """The sub-population at ``idx`` (used to hand chunks to workers)."""
        return Population(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


NEVER = np.int32(10**6)  # sentinel day for "never happens"


def generate_population(cfg: WorldConfig, rng: np.random.Generator) -> Population:
    """Draw every customer's attributes and latent traits."""
    n = cfg.customers
    shares = np.array([r.share for r in cfg.regions], dtype=float)
    # customers are numbered region by region (as utilities' account ranges often are); it
    # also lets a chunk of homes share one weather series instead of gathering per home
    region = np.sort(rng.choice(len(cfg.regions), size=n, p=shares / shares.sum())).astype(np.int8)
    zones = [r.climate_zone for r in cfg.regions]
    zone_of = np.array([z if z in FUEL_MIX else "marine" for z in zones])[region]
    dwelling = rng.choice(len(DWELLING_TYPES), size=n, p=DWELLING_MIX).astype(np.int8)
    floor_area = (np.array(AREA_MEDIAN_M2)[dwelling] * rng.lognormal(0, 0.28, n)).clip(25, 900)
    build_year = rng.integers(1920, 2024, n).astype(np.int16)
    occupants = (1 + rng.poisson(1.5, n)).clip(1, 8).astype(np.int8)
    u = rng.random(n)
    fuel = np.zeros(n, np.int8)
    for z, zone_mix in FUEL_MIX.items():
        m = zone_of == z
        fuel[m] = np.searchsorted(np.cumsum(zone_mix), u[m] * 0.999999)
    has_ac = rng.random(n) < np.vectorize(AC_RATE.get)(zone_of)
    detached = dwelling <= 1
    has_pool = detached & (rng.random(n) < np.vectorize(POOL_RATE.get)(zone_of) * 1.8)
    income = rng.choice(3, size=n, p=(0.3, 0.5, 0.2)).astype(np.int8)
    start = days_since_epoch(cfg.start)
    # EVs: some before the start, then a steady trickle of acquisitions; more for high income
    ev_rate = np.array([0.03, 0.07, 0.15])[income]
    has_ev0 = rng.random(n) < ev_rate
    acquires = ~has_ev0 & (rng.random(n) < ev_rate * 0.4 * cfg.days / 365)
    ev_since = np.full(n, NEVER, np.int32)
    ev_since[has_ev0] = start - rng.integers(30, 1500, has_ev0.sum())
    ev_since[acquires] = start + rng.integers(0, cfg.days, acquires.sum())
    solar0 = detached & (rng.random(n) < np.array([0.04, 0.09, 0.16])[income])
    solar_since = np.full(n, NEVER, np.int32)
    solar_since[solar0] = start - rng.integers(60, 3000, solar0.sum())
    solar_kw = np.round(rng.uniform(3.0, 9.0, n), 1).astype(np.float32)
    smart = rng.random(n) < np.where(income == 2, 0.45, 0.2)
    tenure_start = start - (rng.gamma(1.6, 5.0, n) * 365).astype(np.int32) - 1
    mix = cfg.tariffs.initial_mix
    p = np.array([mix.get(t, 0.0) for t in TARIFFS])
    tariff0 = rng.choice(len(TARIFFS), size=n, p=p / p.sum()).astype(np.int8)
    ev_idx = TARIFFS.index("ev")
    tariff0[(tariff0 == ev_idx) & ~has_ev0] = TARIFFS.index("flat")
    engagement = rng.beta(2.0, 3.0, n).astype(np.float32)
    consent_marketing = rng.random(n) < 0.55 + 0.3 * engagement
    electric_fuels = [HEATING_FUELS.index(f) for f in ("electric_resistance", "heat_pump", "none")]
    electric_fuel = np.isin(fuel, electric_fuels)
    heat_sp = rng.normal(20.5, 1.0, n).clip(17, 23.5).astype(np.float32)
    cool_sp = rng.normal(24.5, 1.2, n).clip(21.5, 28).astype(np.float32)
    # envelope heat loss: ~1.5-2.5 W/K per m² (older homes leak more)
    age_factor = 1.0 + (2024 - build_year) / 200.0
    ua = (floor_area * rng.uniform(0.0013, 0.0022, n) * age_factor).astype(np.float32)
    ua[dwelling == DWELLING_TYPES.index("apartment")] *= 0.7
    return Population(
        region=region,
        dwelling=dwelling,
        floor_area=floor_area.astype(np.float32),
        build_year=build_year,
        occupants=occupants,
        fuel=fuel,
        has_ac=has_ac,
        has_pool=has_pool,
        ev_since=ev_since,
        solar_since=solar_since,
        solar_kw=solar_kw,
        smart_thermostat=smart,
        income=income,
        tenure_start=tenure_start.astype(np.int32),
        tariff0=tariff0,
        consent_marketing=consent_marketing,
        consent_email=consent_marketing & (rng.random(n) < 0.85),
        consent_sms=rng.random(n) < 0.4,
        consent_data_sharing=rng.random(n) < 0.3,
        electric_wh=electric_fuel | (rng.random(n) < 0.18),
        electric_cooking=rng.random(n) < np.where(electric_fuel, 0.9, 0.45),
        has_dishwasher=rng.random(n) < 0.7,
        electric_dryer=rng.random(n) < 0.75,
        archetype=rng.choice(3, size=n, p=(0.55, 0.3, 0.15)).astype(np.int8),
        shift_steps=rng.integers(-2, 3, n).astype(np.int16) * (cfg.steps_per_day // 48 or 1),
        base_kw=(0.06 + 0.0006 * floor_area * rng.lognormal(0, 0.35, n)).astype(np.float32),
        fridge_kw=rng.uniform(0.09, 0.18, n).astype(np.float32),
        light_kw=(0.08 + 0.0012 * floor_area * rng.uniform(0.5, 1.5, n)).astype(np.float32),
        ev_kw=np.where(rng.random(n) < 0.75, 7.2, 3.6).astype(np.float32),
        ev_session_kwh=rng.uniform(6.0, 14.0, n).astype(np.float32),
        pv_factor=rng.uniform(0.72, 0.9, n).astype(np.float32),
        heat_sp=heat_sp,
        cool_sp=cool_sp,
        setback=rng.uniform(0.5, 3.5, n).astype(np.float32),
        ua=ua,
        flexibility=(rng.beta(2.2, 3.0, n) * np.where(smart, 1.3, 1.0))
        .clip(0, 0.95)
        .astype(np.float32),
        price_sensitivity=rng.lognormal(0, 0.45, n).astype(np.float32),
        engagement=engagement,
        satisfaction0=rng.normal(7.4, 1.3, n).clip(0, 10).astype(np.float32),
    )


def to_date(days: np.ndarray) -> np.ndarray:
    """Days since epoch → numpy datetime64[D], with the NEVER sentinel as NaT."""
    out = days.astype("int64").astype("datetime64[D]")
    out[days >= NEVER] = np.datetime64("NaT")
    return out


def date_of(day: int) -> date:
    return DAY0 + timedelta(days=int(day))
