"""The canonical schema: every table that the generator and the importers write.

This module is the one place where the canonical tables are defined. The synthetic utility,
every importer of real data and the feature pipeline read these definitions; ``wattwise data
schema`` renders them as markdown (the README's schema section is generated from here).

A dataset is a folder ``<data_dir>/<dataset>/`` holding one sub-folder per table of parquet
files (``interval_reads`` partitioned by ``month=YYYY-MM``), plus ``truth/`` for the synthetic
utility's ground truth, which feature and training code never read as inputs, and
``quarantine/`` for rejected rows with the reason.

Conventions: timestamps are UTC (``timestamp[us, UTC]``) and mark the *start* of an interval;
energy is kWh; money is in the utility's currency; ids are strings; a source that lacks a
column leaves it null rather than inventing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
DATE = pa.date32()


@dataclass(frozen=True)
class Column:
    """One column: arrow type, nullability, allowed range or values, and what it means."""

    name: str
    type: pa.DataType
    description: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """A canonical table: columns, primary key, partitioning and where it lives."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    partition_by: str | None = None
    truth: bool = False
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def relpath(self) -> str:
        return f"truth/{self.name}" if self.truth else self.name


def C(  # noqa: N802 - reads like a column literal in the tables below
    name: str,
    type_: pa.DataType,
    description: str,
    *,
    nullable: bool = True,
    min: float | None = None,  # noqa: A002 - mirrors Column
    max: float | None = None,  # noqa: A002
    allowed: tuple[str, ...] | None = None,
) -> Column:
    """Shorthand for :class:`Column` used in the table definitions below."""
    return Column(name, type_, description, nullable, min, max, allowed)


TARIFFS = ("flat", "tou", "ev", "dynamic")
PROGRAMS = (
    "efficiency_rebate",
    "tou_rate",
    "ev_rate",
    "solar",
    "demand_response",
    "budget_billing",
    "paperless",
)
APPLIANCES = (
    "base",
    "refrigerator",
    "hvac",
    "water_heater",
    "cooking",
    "lighting",
    "laundry",
    "dishwasher",
    "pool_pump",
    "ev",
)
DWELLING_TYPES = ("detached", "semi_detached", "terraced", "apartment", "mobile_home")
HEATING_FUELS = ("gas", "electric_resistance", "heat_pump", "oil", "none")
SERVICE_KINDS = ("electric", "gas", "water")
CHANNELS = ("call", "email", "web", "app", "sms", "letter")
CONTACT_KINDS = ("inquiry", "complaint", "billing", "outage_report", "login", "move")
EVENT_KINDS = ("dr", "price_high", "price_low")
# ESPI QualityOfReading codes kept as they come; the synthetic utility uses 0 and 8 and flags
# bad reads in truth/bad_reads only (a real utility does not know which reads are bad).
QUALITY_VALID = 0
QUALITY_ESTIMATED = 8


CUSTOMERS = Table(
    "customers",
    "One row per customer account and the premise it is served at.",
    (
        C("customer_id", pa.string(), "account id", nullable=False),
        C("premise_id", pa.string(), "service address id"),
        C("region", pa.string(), "service region (weather is per region)"),
        C("climate_zone", pa.string(), "climate zone of the region"),
        C("dwelling_type", pa.string(), "type of home", allowed=DWELLING_TYPES),
        C("floor_area_m2", pa.float32(), "heated floor area", min=10, max=2000),
        C("build_year", pa.int16(), "year built", min=1800, max=2100),
        C("occupants", pa.int8(), "people living there", min=0, max=20),
        C("heating_fuel", pa.string(), "main space-heating fuel", allowed=HEATING_FUELS),
        C("has_ac", pa.bool_(), "central or room air conditioning"),
        C("has_pool", pa.bool_(), "pool with a pump"),
        C("has_ev", pa.bool_(), "owns an electric vehicle (at the end of the data)"),
        C("ev_since", DATE, "date the EV arrived"),
        C("has_solar", pa.bool_(), "rooftop PV (at the end of the data)"),
        C("solar_kw", pa.float32(), "PV nameplate kW", min=0, max=100),
        C("solar_since", DATE, "PV install date"),
        C("smart_thermostat", pa.bool_(), "has a connected thermostat"),
        C("income_band", pa.string(), "low / middle / high, or a source's own band"),
        C("segment", pa.string(), "marketing segment (e.g. ACORN group for LCL)"),
        C("tenure_start", DATE, "date the account opened"),
        C("tariff", pa.string(), "current tariff", allowed=TARIFFS),
        C("consent_marketing", pa.bool_(), "may receive marketing"),
        C("consent_email", pa.bool_(), "may be emailed"),
        C("consent_sms", pa.bool_(), "may be texted"),
        C("consent_data_sharing", pa.bool_(), "allows data sharing with partners"),
        C("move_in", DATE, "date the customer moved in"),
        C("move_out", DATE, "date the account closed (null while active)"),
        C("source", pa.string(), "dataset the row came from", nullable=False),
    ),
    key=("customer_id",),
)

METERS = Table(
    "meters",
    "One row per meter (usage point).",
    (
        C("meter_id", pa.string(), "meter / usage point id", nullable=False),
        C("customer_id", pa.string(), "account the meter bills to"),
        C("premise_id", pa.string(), "premise"),
        C("service_kind", pa.string(), "what it measures", allowed=SERVICE_KINDS, nullable=False),
        C("interval_minutes", pa.int16(), "reading interval", min=1, max=1440, nullable=False),
        C("unit", pa.string(), "unit of `kwh` in interval_reads: kWh, therm or m3"),
        C("timezone", pa.string(), "IANA zone of the premise (timestamps are UTC)"),
        C("installed_at", TS, "first reading"),
    ),
    key=("meter_id",),
)

INTERVAL_READS = Table(
    "interval_reads",
    "Metered consumption per meter per interval. `kwh` is energy imported in the interval "
    "(therm or m3 for gas and water meters, see meters.unit); `kwh_export` is energy exported "
    "(solar), null where a meter does not measure it.",
    (
        C("meter_id", pa.string(), "meter id", nullable=False),
        C("ts", TS, "interval start, UTC", nullable=False),
        C("kwh", pa.float32(), "imported energy in the interval", min=0, max=1000),
        C("kwh_export", pa.float32(), "exported energy in the interval", min=0, max=1000),
        C("quality", pa.int16(), "ESPI quality-of-reading code, 0 = valid, 8 = estimated"),
    ),
    key=("meter_id", "ts"),
    partition_by="month",
)

WEATHER = Table(
    "weather",
    "Hourly weather per region.",
    (
        C("region", pa.string(), "region", nullable=False),
        C("ts", TS, "hour start, UTC", nullable=False),
        C("temperature_c", pa.float32(), "air temperature", min=-60, max=60),
        C("ghi_wm2", pa.float32(), "global horizontal irradiance", min=0, max=1500),
        C("humidity", pa.float32(), "relative humidity 0-1", min=0, max=1),
    ),
    key=("region", "ts"),
)

TARIFF_RATES = Table(
    "tariff_rates",
    "Price per kWh of each tariff by hour of day and day type; a dynamic tariff's events "
    "are in `events`.",
    (
        C("tariff", pa.string(), "tariff", allowed=TARIFFS, nullable=False),
        C(
            "day_type",
            pa.string(),
            "weekday, weekend or all",
            allowed=("weekday", "weekend", "all"),
        ),
        C("hour_start", pa.int8(), "first hour (local) the rate applies", min=0, max=23),
        C("hour_end", pa.int8(), "hour (local) the rate stops applying, exclusive", min=1, max=24),
        C("price_per_kwh", pa.float32(), "energy price", min=0, max=10),
        C("standing_charge_per_day", pa.float32(), "fixed daily charge", min=0, max=100),
        C("valid_from", DATE, "first day the rate applies"),
    ),
    key=("tariff", "day_type", "hour_start", "valid_from"),
)

EVENTS = Table(
    "events",
    "Demand-response events and price events (a dynamic tariff's High and Low periods).",
    (
        C("event_id", pa.string(), "event id", nullable=False),
        C("kind", pa.string(), "dr, price_high or price_low", allowed=EVENT_KINDS, nullable=False),
        C("region", pa.string(), "region called (null: all)"),
        C("start", TS, "event start, UTC", nullable=False),
        C("end", TS, "event end, UTC (exclusive)", nullable=False),
        C("notified_at", TS, "when customers were told"),
        C("incentive_per_kwh", pa.float32(), "payment per kWh reduced (dr)", min=0, max=100),
        C("price_per_kwh", pa.float32(), "price during the event (price events)", min=0, max=100),
    ),
    key=("event_id",),
)

EVENT_PARTICIPANTS = Table(
    "event_participants",
    "Who was called for each event: enrolled customers, and the randomized control group "
    "held back (not called) to measure the effect.",
    (
        C("event_id", pa.string(), "event", nullable=False),
        C("customer_id", pa.string(), "customer", nullable=False),
        C("called", pa.bool_(), "false: held back as control", nullable=False),
    ),
    key=("event_id", "customer_id"),
)

BILLS = Table(
    "bills",
    "Monthly bills.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("bill_month", DATE, "first day of the billed month", nullable=False),
        C("kwh", pa.float32(), "billed energy", min=0),
        C("amount", pa.float32(), "billed amount", min=-10000, max=100000),
        C("tariff", pa.string(), "tariff billed", allowed=TARIFFS),
        C("due_date", DATE, "payment due"),
    ),
    key=("customer_id", "bill_month"),
)

PAYMENTS = Table(
    "payments",
    "Payments against bills; arrears is the balance still owed after the payment.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("bill_month", DATE, "bill paid", nullable=False),
        C("paid_date", DATE, "date paid (null: unpaid)"),
        C("amount", pa.float32(), "amount paid", min=0),
        C("days_late", pa.int16(), "days after the due date", min=0),
        C("arrears", pa.float32(), "balance owed after this payment", min=0),
    ),
    key=("customer_id", "bill_month"),
)

CONTACTS = Table(
    "contacts",
    "Customer contacts: calls, complaints, digital logins.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("ts", TS, "when", nullable=False),
        C("channel", pa.string(), "channel", allowed=CHANNELS),
        C("kind", pa.string(), "what about", allowed=CONTACT_KINDS),
    ),
)

OUTAGES = Table(
    "outages",
    "Outages experienced by customers.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("start", TS, "outage start", nullable=False),
        C("minutes", pa.float32(), "duration", min=0, max=100000),
    ),
)

SURVEYS = Table(
    "surveys",
    "Satisfaction survey answers (0-10).",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("ts", TS, "answered at", nullable=False),
        C("satisfaction", pa.int8(), "0-10", min=0, max=10),
    ),
)

OFFERS = Table(
    "offers",
    "Program offers sent (randomized among eligible customers, so their effect is identifiable).",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("program", pa.string(), "program offered", allowed=PROGRAMS, nullable=False),
        C("sent_at", TS, "sent", nullable=False),
        C("channel", pa.string(), "channel", allowed=CHANNELS),
    ),
    key=("customer_id", "program", "sent_at"),
)

ENROLLMENTS = Table(
    "enrollments",
    "Program enrollments.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("program", pa.string(), "program", allowed=PROGRAMS, nullable=False),
        C("enrolled_at", TS, "enrolled", nullable=False),
        C("ended_at", TS, "left the program (null: still enrolled)"),
    ),
    key=("customer_id", "program", "enrolled_at"),
)

CHURN_LABELS = Table(
    "churn_labels",
    "Observed churn labels at snapshot dates: did the customer leave within the horizon "
    "after the snapshot (sources with only a label, such as PowerCo, write this directly).",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("snapshot", TS, "snapshot time (features must be known by then)", nullable=False),
        C("churned", pa.bool_(), "left within horizon_days after the snapshot", nullable=False),
        C("horizon_days", pa.int16(), "label horizon", min=1, max=3650),
    ),
    key=("customer_id", "snapshot"),
)

CUSTOMER_ATTRIBUTES = Table(
    "customer_attributes",
    "Source-specific attributes in long form (name, value) for sources whose columns have no "
    "canonical home (e.g. PowerCo's margins and product counts).",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("name", pa.string(), "attribute", nullable=False),
        C("value_num", pa.float64(), "numeric value"),
        C("value_str", pa.string(), "text value"),
        C("as_of", TS, "when the value was known"),
    ),
    key=("customer_id", "name"),
)

# ---------------------------------------------------------------- truth (synthetic only)

TRUTH_APPLIANCE_LOADS = Table(
    "appliance_loads",
    "True per-interval kWh of each appliance for the sub-metered panel of homes "
    "(world.appliance_truth_share of all homes).",
    (
        C("meter_id", pa.string(), "meter", nullable=False),
        C("ts", TS, "interval start", nullable=False),
        *(C(a, pa.float32(), f"{a} kWh in the interval", min=0) for a in APPLIANCES),
        C("pv", pa.float32(), "PV generation kWh in the interval", min=0),
    ),
    key=("meter_id", "ts"),
    partition_by="month",
    truth=True,
)

TRUTH_APPLIANCE_MONTHLY = Table(
    "appliance_monthly",
    "True kWh per appliance per meter per month, for every home.",
    (
        C("meter_id", pa.string(), "meter", nullable=False),
        C("month", DATE, "first day of month", nullable=False),
        *(C(a, pa.float32(), f"{a} kWh in the month", min=0) for a in APPLIANCES),
        C("pv", pa.float32(), "PV kWh in the month", min=0),
    ),
    key=("meter_id", "month"),
    truth=True,
)

TRUTH_EVENT_EFFECTS = Table(
    "event_effects",
    "Per event, customer and interval: metered load and the true counterfactual load "
    "(what the home would have used without the event).",
    (
        C("event_id", pa.string(), "event", nullable=False),
        C("customer_id", pa.string(), "customer", nullable=False),
        C("meter_id", pa.string(), "meter", nullable=False),
        C("ts", TS, "interval start", nullable=False),
        C("kwh_metered", pa.float32(), "what the meter recorded"),
        C("kwh_counterfactual", pa.float32(), "what it would have recorded without the event"),
        C("called", pa.bool_(), "called (treated) or control"),
    ),
    key=("event_id", "meter_id", "ts"),
    truth=True,
)

TRUTH_CHURN = Table(
    "churn_probability",
    "True probability of leaving within 90 days at each monthly snapshot, and the monthly "
    "hazard behind it.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("snapshot", TS, "snapshot", nullable=False),
        C(
            "p_churn_90d",
            pa.float32(),
            "true probability given the state at the snapshot (the next months' events drawn)",
            min=0,
            max=1,
        ),
        C(
            "p_churn_90d_realised",
            pa.float32(),
            "probability under the hazards as they turned out (knows the future: a bound)",
            min=0,
            max=1,
        ),
        C(
            "p_churn_90d_held",
            pa.float32(),
            "true probability holding the snapshot's drivers: 1-(1-hazard)^3",
            min=0,
            max=1,
        ),
        C("hazard", pa.float32(), "monthly hazard", min=0, max=1),
    ),
    key=("customer_id", "snapshot"),
    truth=True,
)

TRUTH_ENROLLMENT = Table(
    "enrollment_probability",
    "True 90-day enrollment probability per customer, program and monthly snapshot, with and "
    "without an offer (their difference is the offer's true treatment effect).",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("program", pa.string(), "program", allowed=PROGRAMS, nullable=False),
        C("snapshot", TS, "snapshot", nullable=False),
        C("p_no_offer", pa.float32(), "probability without an offer", min=0, max=1),
        C("p_offer", pa.float32(), "probability with an offer", min=0, max=1),
        C("offered", pa.bool_(), "whether an offer was in fact sent in the window"),
    ),
    key=("customer_id", "program", "snapshot"),
    truth=True,
)

TRUTH_BAD_READS = Table(
    "bad_reads",
    "Injected meter problems: gaps, negative reads, spikes, duplicated intervals.",
    (
        C("meter_id", pa.string(), "meter", nullable=False),
        C("ts", TS, "interval start", nullable=False),
        C("kind", pa.string(), "gap, negative, spike or duplicate", nullable=False),
    ),
    truth=True,
)

TRUTH_SCENARIOS = Table(
    "scenarios",
    "Known shifts injected for monitoring tests.",
    (
        C("scenario", pa.string(), "name", nullable=False),
        C("start", TS, "first affected time", nullable=False),
        C("params", pa.string(), "JSON parameters"),
    ),
    truth=True,
)

TRUTH_CUSTOMERS = Table(
    "customer_traits",
    "Latent per-home traits behind the loads and behaviours (setpoints, flexibility, "
    "price sensitivity); never observed by a real utility.",
    (
        C("customer_id", pa.string(), "customer", nullable=False),
        C("heat_setpoint_c", pa.float32(), "heating setpoint"),
        C("cool_setpoint_c", pa.float32(), "cooling setpoint"),
        C("ua_kw_per_k", pa.float32(), "envelope heat-loss coefficient"),
        C("flexibility", pa.float32(), "share of HVAC load shed in an event", min=0, max=1),
        C("price_sensitivity", pa.float32(), "weight of bill shock in churn hazard"),
        C("engagement", pa.float32(), "digital engagement propensity"),
    ),
    key=("customer_id",),
    truth=True,
)

CANONICAL_TABLES: tuple[Table, ...] = (
    CUSTOMERS,
    METERS,
    INTERVAL_READS,
    WEATHER,
    TARIFF_RATES,
    EVENTS,
    EVENT_PARTICIPANTS,
    BILLS,
    PAYMENTS,
    CONTACTS,
    OUTAGES,
    SURVEYS,
    OFFERS,
    ENROLLMENTS,
    CHURN_LABELS,
    CUSTOMER_ATTRIBUTES,
)
TRUTH_TABLES: tuple[Table, ...] = (
    TRUTH_APPLIANCE_LOADS,
    TRUTH_APPLIANCE_MONTHLY,
    TRUTH_EVENT_EFFECTS,
    TRUTH_CHURN,
    TRUTH_ENROLLMENT,
    TRUTH_BAD_READS,
    TRUTH_SCENARIOS,
    TRUTH_CUSTOMERS,
)
TABLES: dict[str, Table] = {t.name: t for t in (*CANONICAL_TABLES, *TRUTH_TABLES)}


def table(name: str) -> Table:
    """Look up a table definition by name."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown canonical table {name!r}; known: {sorted(TABLES)}") from None


def render_markdown() -> str:
    """The schema as markdown, for the README and ``wattwise data schema``."""
    lines: list[str] = []
    for t in (*CANONICAL_TABLES, *TRUTH_TABLES):
        where = f"`{t.relpath()}/`" + (
            f", partitioned by `{t.partition_by}`" if t.partition_by else ""
        )
        key = f" Key: ({', '.join(t.key)})." if t.key else ""
        lines += [f"### {t.name}", "", f"{t.description} {where}.{key}", ""]
        lines += ["| column | type | null | meaning |", "|---|---|---|---|"]
        for c in t.columns:
            rng = ""
            if c.min is not None or c.max is not None:
                rng = f" [{'' if c.min is None else c.min}, {'' if c.max is None else c.max}]"
            if c.allowed:
                rng = " {" + ", ".join(c.allowed) + "}"
            null = "yes" if c.nullable else "no"
            lines.append(f"| `{c.name}` | {c.type} | {null} | {c.description}{rng} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- importers (issue 4)
# Tables that only real-data importers write. Kept at the end so the definitions above stay
# untouched; registered in TABLES below.

HIGHRES_POWER = Table(
    "highres_power",
    "Sub-metered power at native resolution (REDD: 3 s), in long form: one row per meter, "
    "channel and sample. Channel `aggregate` is the whole-house mains; circuit channels keep "
    "their source code (e.g. `FRE`, `LI2`) and `appliance` maps them to the canonical list "
    "(null where none fits, e.g. outlets). REDD kept no absolute dates: `ts` counts from the "
    "documented epoch 2011-04-16T00:00Z and `t_seconds` keeps the original offset.",
    (
        C("meter_id", pa.string(), "meter (house)", nullable=False),
        C("ts", TS, "sample time, UTC (epoch + t_seconds for REDD)", nullable=False),
        C("t_seconds", pa.int64(), "seconds since the start of the recording", min=0),
        C("channel", pa.string(), "`aggregate` or the source circuit code", nullable=False),
        C("appliance", pa.string(), "canonical appliance of the circuit", allowed=APPLIANCES),
        C("watts", pa.float32(), "mean power in the sample", min=0, max=100000),
    ),
    key=("meter_id", "channel", "ts"),
)

IMPORT_TABLES: tuple[Table, ...] = (HIGHRES_POWER,)
TABLES.update({t.name: t for t in IMPORT_TABLES})
