"""The feature groups: entity key, TTL suggestion and every feature with one line of meaning.

This registry is the contract with the Feast side (views are generated from it) and with
docs/features.md; a test checks that each built file has exactly these columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.schema import CONTACT_KINDS, PROGRAMS, TARIFFS


@dataclass(frozen=True)
class GroupSpec:
    """One feature group (one parquet file, one Feast feature view)."""

    name: str
    entity: str
    description: str
    ttl_days: int
    features: tuple[tuple[str, str], ...]
    sources: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        return [f for f, _ in self.features]


USAGE = GroupSpec(
    "usage",
    "customer_id",
    "Consumption level, timing and weather sensitivity from electric interval reads.",
    45,
    (
        ("usage_mean_daily_kwh_30d", "mean kWh per complete day, last 30 days"),
        ("usage_mean_daily_kwh_90d", "mean kWh per complete day, last 90 days"),
        ("usage_mean_daily_kwh_365d", "mean kWh per complete day, last 365 days"),
        ("usage_days_365d", "complete days of reads in the last 365 days"),
        ("usage_peak_share_90d", "share of kWh on weekdays 16:00-21:00 local, 90 days"),
        ("usage_offpeak_share_90d", "1 - peak share, 90 days"),
        ("usage_evening_share_90d", "share of kWh 17:00-20:00 local (all days), 90 days"),
        ("usage_load_factor_90d", "mean interval kWh / max interval kWh, 90 days"),
        ("usage_night_baseload_kw_90d", "mean power 01:00-05:00 local, 90 days"),
        ("usage_weekday_weekend_ratio_90d", "mean weekday / mean weekend daily kWh, 90 days"),
        ("usage_cv_daily_90d", "coefficient of variation of daily kWh, 90 days"),
        ("usage_trend_yoy_30d", "mean daily kWh last 30 d / same 30 d a year earlier - 1"),
        ("usage_max_demand_kw_90d", "largest interval power (kW), 90 days"),
        ("usage_solar_export_share_90d", "export / (import + export) kWh, 90 days; 0: no export"),
        ("usage_ev_nights_30d", "nights (22-06 local) with >=2 consecutive intervals > ev_kw"),
        ("usage_anomaly_days_30d", "days in last 30 with |z| > anomaly_z vs the 90 days before"),
        ("usage_heating_slope_kwh_per_hdd", "daily kWh per heating degree day (best fit)"),
        ("usage_cooling_slope_kwh_per_cdd", "daily kWh per cooling degree day (best fit)"),
        ("usage_heating_balance_c", "heating balance point of the best fit (null: none)"),
        ("usage_cooling_balance_c", "cooling balance point of the best fit (null: none)"),
        ("usage_degree_day_r2", "R² of the best degree-day fit, last ~365 days"),
    ),
    ("interval_reads", "meters", "customers", "weather"),
)

LOAD_SHAPE = GroupSpec(
    "load_shape",
    "customer_id",
    "Normalised 24-hour profile of the last ~90 days and its k-means segment.",
    45,
    (
        ("shape_segment", "k-means segment id (fit on snapshots before segment_fit_end)"),
        ("shape_distance", "euclidean distance to the segment centroid"),
        *(
            (f"shape_h{h:02d}", f"share of kWh in local hour {h:02d}, last ~90 days")
            for h in range(24)
        ),
    ),
    ("interval_reads", "meters"),
)

PEER = GroupSpec(
    "peer",
    "customer_id",
    "Usage against similar homes (region, dwelling type, floor-area band) at the same snapshot.",
    45,
    (
        ("peer_group_size", "homes in the peer group with a 90-day mean"),
        ("peer_percentile_90d", "percent rank (0-1) of the 90-day mean daily kWh among peers"),
        ("peer_ratio_to_efficient_90d", "90-day mean / 20th percentile of the peers"),
    ),
    ("interval_reads", "meters", "customers"),
)

RATE = GroupSpec(
    "rate",
    "customer_id",
    "The customer's last ~12 months of load priced under every tariff in tariff_rates.",
    45,
    (
        ("rate_days_12m", "days of reads priced (<= 365)"),
        *(
            (f"rate_cost_12m_{t}", f"energy + standing charges under {t} (null: not offered)")
            for t in TARIFFS
        ),
        (
            "rate_current_tariff",
            "tariff of the last bill before the snapshot (else customers.tariff)",
        ),
        ("rate_current_cost_12m", "cost under the current tariff"),
        ("rate_best_tariff", "cheapest tariff"),
        ("rate_best_saving_12m", "current cost - cheapest cost (>= 0)"),
    ),
    ("interval_reads", "meters", "customers", "tariff_rates"),
)

BILLING = GroupSpec(
    "billing",
    "customer_id",
    "Bills known at the snapshot (month m known from the 1st of m+1) and payment behaviour.",
    45,
    (
        ("bill_last_amount", "amount of the last known bill"),
        ("bill_last_kwh", "kWh of the last known bill"),
        ("bill_change_yoy", "last bill / bill 12 months earlier - 1 (null without history)"),
        ("bill_shock_ratio", "last bill / mean of the 3 bills before it"),
        (
            "bill_next_shock_last_year",
            "the shock ratio, a year earlier, of the bill for the month now starting (seasonal "
            "shocks repeat: a forecast of the next bill's shock; null without 15 months of bills)",
        ),
        ("bill_next2_shock_last_year", "the same for the month after"),
        ("bill_count_12m", "bills known in the last 12 months"),
        ("pay_arrears", "arrears after the latest known payment"),
        ("pay_late_count_12m", "late payments (days_late > 0) over 12 months"),
        ("pay_mean_days_late_12m", "mean days late over 12 months"),
    ),
    ("bills", "payments"),
)

ENGAGEMENT = GroupSpec(
    "engagement",
    "customer_id",
    "Contacts, outages, satisfaction, tenure and consents.",
    45,
    (
        ("eng_contacts_90d", "contacts of any kind, 90 days"),
        *((f"eng_{k}_90d", f"{k} contacts, 90 days") for k in CONTACT_KINDS),
        ("eng_calls_90d", "contacts by phone, 90 days"),
        ("eng_digital_logins_90d", "web/app logins, 90 days"),
        ("eng_web_logins_per_30d_365d", "web logins per 30 days over the last year"),
        ("eng_app_logins_per_30d_365d", "app logins per 30 days over the last year"),
        ("eng_email_inquiries_per_30d_365d", "e-mail inquiries per 30 days over the last year"),
        ("eng_web_inquiries_per_30d_365d", "web inquiries (rate look-ups) per 30 days, year"),
        ("eng_complaints_per_30d_365d", "complaints per 30 days over the last year"),
        ("eng_outages_90d", "outages that ended before the snapshot, 90 days"),
        ("eng_outage_minutes_90d", "their minutes"),
        ("eng_last_satisfaction", "last survey score (0-10)"),
        ("eng_days_since_survey", "days since that survey"),
        ("eng_tenure_days", "days since tenure_start"),
        ("eng_consent_marketing", "consent flag (current value: no history kept)"),
        ("eng_consent_email", "consent flag (current value)"),
        ("eng_consent_sms", "consent flag (current value)"),
        ("eng_consent_data_sharing", "consent flag (current value)"),
    ),
    ("customers",),
)

PROGRAMS_GROUP = GroupSpec(
    "programs",
    "customer_id",
    "Program enrolment and offers at the snapshot, demand-response calls.",
    45,
    (
        *((f"prog_enrolled_{p}", f"enrolled in {p} at the snapshot") for p in PROGRAMS),
        *((f"prog_offers_{p}_90d", f"{p} offers received, 90 days") for p in PROGRAMS),
        *(
            (f"prog_days_since_offer_{p}", f"days since the last {p} offer (365 days, else null)")
            for p in PROGRAMS
        ),
        ("prog_dr_events_called_365d", "DR events the customer was called for, 365 days"),
        ("dr_mean_reduction_kw", "measured DR reduction (null until settlement exists)"),
    ),
    ("customers",),
)

PREMISE = GroupSpec(
    "premise",
    "customer_id",
    "The home and household as the customers table describes them: fields that do not change "
    "with program enrolment (EV, solar and tariff, which do, are left out: the customers table "
    "holds their end-of-data values).",
    45,
    (
        ("prem_region", "service region"),
        ("prem_dwelling_type", "type of home"),
        ("prem_floor_area_m2", "heated floor area, m²"),
        ("prem_build_year", "year built"),
        ("prem_occupants", "people living there"),
        ("prem_heating_fuel", "main space-heating fuel"),
        ("prem_has_ac", "air conditioning"),
        ("prem_has_pool", "pool with a pump"),
        ("prem_smart_thermostat", "connected thermostat"),
        ("prem_income_band", "income band"),
    ),
    ("customers",),
)

WINDOWS = GroupSpec(
    "windows",
    "meter_id",
    "The last window_days of reads per meter at fixed length, for disaggregation.",
    45,
    (
        ("win_kwh", "list<float32>: window_days x intervals/day kWh, NaN where missing"),
        ("win_interval_minutes", "interval length of the list"),
        ("win_missing", "intervals missing in the window"),
    ),
    ("interval_reads", "meters"),
)

GROUPS: dict[str, GroupSpec] = {
    g.name: g
    for g in (USAGE, LOAD_SHAPE, PEER, RATE, BILLING, ENGAGEMENT, PROGRAMS_GROUP, PREMISE, WINDOWS)
}

DR_PERFORMANCE = GroupSpec(
    "dr_performance",
    "customer_id",
    "Past measured DR performance, written by `wattwise dr settle` (features/dr/settle.py).",
    45,
    (
        ("drp_events_settled", "called events settled so far"),
        ("drp_mean_reduction_kw", "mean measured reduction (baseline - metered), kW"),
        ("drp_last_reduction_kw", "measured reduction of the last settled event, kW"),
        ("drp_std_reduction_kw", "standard deviation of the measured reductions, kW"),
        ("drp_mean_reduction_share", "mean reduction / baseline energy"),
        ("drp_mean_baseline_kw", "mean baseline in event hours, kW"),
        ("drp_days_since_last_event", "days since the last settled event ended"),
    ),
    ("event_participants", "events", "interval_reads"),
)

APPLIANCES_GROUP = GroupSpec(
    "appliances",
    "customer_id",
    "Monthly appliance breakdown and detected appliances from the registered disaggregation "
    "model, written by `wattwise disaggregate --export-features` (training/disaggregation).",
    45,
    (
        ("has_ev", "an EV was detected in this or an earlier month"),
        ("has_pool", "a pool pump was detected in this or an earlier month"),
        ("has_ac", "cooling load was detected in this or an earlier month"),
        ("appl_total_kwh", "metered kWh of the month"),
        *(
            (f"appl_share_{a}", f"predicted share of the month's kWh used by {a}")
            for a in (
                "hvac",
                "water_heater",
                "ev",
                "pool_pump",
                "refrigerator",
                "laundry",
                "dishwasher",
                "lighting",
                "other",
            )
        ),
    ),
    ("interval_reads", "meters", "customers", "weather"),
)

# Groups written outside `features build` (settlement, disaggregation export): Feast picks
# up their files like any other; the pipeline neither builds nor checks them.
EXTERNAL_GROUPS: dict[str, GroupSpec] = {
    DR_PERFORMANCE.name: DR_PERFORMANCE,
    APPLIANCES_GROUP.name: APPLIANCES_GROUP,
}
