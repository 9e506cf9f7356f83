"""Hourly weather per region: seasons, day and night, fronts, heat waves and cold snaps.

Temperature = seasonal mean (coldest mid-January, warmest mid-July)
            + diurnal swing (peak 15:00 local, damped on cloudy days)
            + fronts (a daily AR(1) anomaly, interpolated hourly)
            + heat waves (summer, +5..+9 °C for 3-6 days) and cold snaps (winter, -6..-10 °C)
            + the heat-wave scenario (+8 °C for 10 days) when it is asked for.
Irradiance = clear-sky GHI from the sun's elevation × a daily clearness index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from features.synth.clock import Clock

HEAT_WAVE_DELTA_C = 8.0
HEAT_WAVE_DAYS = 10


@dataclass(frozen=True)
class Weather:
    """Per-region weather at interval resolution plus the hourly table that is written."""

    temp: np.ndarray  # (R, T) °C
    ghi: np.ndarray  # (R, T) W/m²
    temp_eff: np.ndarray  # (R, T) temperature felt indoors: a 3-hour lag of outdoor temperature
    daily_max: np.ndarray  # (R, days) local-day max °C
    daily_min: np.ndarray  # (R, days)
    table: pa.Table


def _smooth_lag(x: np.ndarray, alpha: float) -> np.ndarray:
    """First-order lag along the last axis (building thermal mass).

    ``y[t] = alpha·x[t] + (1-alpha)·y[t-1]`` from ``y[-1] = x[0]``; the loop is over time
    steps of a few regional series (vectors), not over customers.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.empty_like(x)
    acc = x[..., 0].copy()
    for t in range(x.shape[-1]):
        acc = alpha * x[..., t] + (1.0 - alpha) * acc
        y[..., t] = acc
    return y.astype(np.float32)


def generate_weather(clock: Clock, rng: np.random.Generator) -> Weather:
    """Generate weather for every region; deterministic for a given generator state."""
    cfg = clock.cfg
    R, T, D = len(cfg.regions), clock.n_steps, cfg.days + 1
    doy = np.array([d.timetuple().tm_yday for d in clock.day_dates], dtype=np.float32)
    month = np.array([d.month for d in clock.day_dates])
    temp = np.empty((R, T), np.float32)
    ghi = np.empty((R, T), np.float32)
    hum = np.empty((R, T), np.float32)
    s_start = (
        clock.day_dates.index(cfg.effective_scenario_start) if cfg.scenario == "heat_wave" else -1
    )
    for r, reg in enumerate(cfg.regions):
        day = clock.day_index[r]
        hour = clock.hour[r]
        # fronts: AR(1) daily anomaly
        eps = rng.normal(0.0, 2.4, D).astype(np.float32)
        front = np.empty(D, np.float32)
        acc = 0.0
        for i in range(D):  # D is days (hundreds), not rows
            acc = 0.75 * acc + eps[i]
            front[i] = acc
        events = np.zeros(D, np.float32)
        summer = np.flatnonzero((month >= 6) & (month <= 9))
        winter = np.flatnonzero((month == 12) | (month <= 2))
        for pool, sign, lo, hi in ((summer, 1.0, 5.0, 9.0), (winter, -1.0, 6.0, 10.0)):
            if pool.size == 0:
                continue
            n_ev = max(1, int(round(pool.size / 60)))
            for s in rng.choice(pool, size=n_ev, replace=False):
                length = int(rng.integers(3, 7))
                events[s : s + length] += sign * rng.uniform(lo, hi)
        if s_start >= 0:
            events[s_start : s_start + HEAT_WAVE_DAYS] += HEAT_WAVE_DELTA_C
        clear = rng.beta(5.0, 1.8, D).astype(np.float32)
        seasonal = reg.mean_temp_c - reg.seasonal_amplitude_c * np.cos(
            2 * np.pi * (doy - 15) / 365.25
        )
        # interpolate daily terms to intervals (linear between local-day midpoints)
        frac_day = day + (hour / 24.0) - 0.5
        daily = (seasonal + front + events).astype(np.float32)
        daily_t = np.interp(frac_day, np.arange(D), daily).astype(np.float32)
        clear_t = clear[day]
        diurnal = (
            reg.diurnal_amplitude_c * (0.5 + 0.5 * clear_t) * np.cos(2 * np.pi * (hour - 15) / 24)
        )
        temp[r] = daily_t + diurnal
        # clear-sky irradiance from solar elevation
        lat = np.deg2rad(reg.latitude)
        doy_t = doy[day]
        decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (284 + doy_t) / 365.0)
        hangle = np.deg2rad(15.0 * (hour - 12.0))
        sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hangle)
        ghi[r] = 1050.0 * np.clip(sin_el, 0, None) ** 1.15 * (0.25 + 0.75 * clear_t)
        hum[r] = np.clip(0.75 - 0.012 * (temp[r] - reg.mean_temp_c) - 0.2 * clear_t, 0.05, 1.0)
    steps_per_hour = 60 // cfg.interval_minutes
    alpha = 1.0 - np.exp(-1.0 / (3.0 * steps_per_hour))
    temp_eff = _smooth_lag(temp, alpha)
    days = cfg.days
    daily_max = np.full((R, days), -99.0, np.float32)
    daily_min = np.full((R, days), 99.0, np.float32)
    for r in range(R):
        d = np.clip(clock.day_index[r], 0, days - 1)
        np.maximum.at(daily_max[r], d, temp[r])
        np.minimum.at(daily_min[r], d, temp[r])
    table = _hourly_table(clock, temp, ghi, hum)
    return Weather(temp, ghi, temp_eff, daily_max, daily_min, table)


def _hourly_table(clock: Clock, temp: np.ndarray, ghi: np.ndarray, hum: np.ndarray) -> pa.Table:
    """Average interval weather to hours for the canonical ``weather`` table."""
    cfg = clock.cfg
    sph = 60 // cfg.interval_minutes
    H = clock.n_steps // sph
    names = [r.name for r in cfg.regions]
    R = len(names)

    def hourly(a: np.ndarray) -> np.ndarray:
        return a[:, : H * sph].reshape(R, H, sph).mean(axis=2).ravel()

    ts = np.tile(clock.ts_us[: H * sph : sph], R)
    region = np.repeat(np.arange(R, dtype=np.int32), H)
    return pa.table(
        {
            "region": pa.DictionaryArray.from_arrays(pa.array(region), pa.array(names)).cast(
                pa.string()
            ),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "temperature_c": pa.array(np.round(hourly(temp), 2), pa.float32()),
            "ghi_wm2": pa.array(np.round(hourly(ghi), 1), pa.float32()),
            "humidity": pa.array(np.round(hourly(hum), 3), pa.float32()),
        }
    )
