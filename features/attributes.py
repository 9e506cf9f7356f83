"""The ``attributes`` feature group: a source's own customer attributes, made model-ready.

Sources such as an energy retailer's churn table carry attributes with no canonical home;
importers store them long-form in ``customer_attributes`` (name, value, as_of). This group
pivots them to one row per customer and ``as_of`` time, with date-valued attributes turned
into months relative to that time (``<name>_months``: negative = in the past), so that every
value is one that was known when the row's time came.

Derived features (:data:`DERIVED`) are computed from the pivoted values of the same row only,
never from other rows or labels, so a file scored later gets exactly the training-time values;
each is built only when the attributes it needs exist (PowerCo's churn table, for now).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from features.tables import table_dir

log = logging.getLogger(__name__)
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class Derived:
    """A feature computed from other attribute columns of the same row (SQL over the pivot)."""

    name: str
    needs: tuple[str, ...]
    sql: str
    why: str


def _ratio(a: str, b: str) -> str:
    return f"{a} / nullif({b}, 0)"


# PowerCo (energy retailer's SME table). Every input is a column of the snapshot row, so every
# derived value is known at ``as_of`` (docs/features.md lists them with the reasons).
_A, _E, _M, _R = (
    "attr_date_activ_months",
    "attr_date_end_months",
    "attr_date_modif_prod_months",
    "attr_date_renewal_months",
)
DERIVED: tuple[Derived, ...] = (
    Derived(
        "attr_contract_length_months",
        (_A, _E),
        f"{_E} - {_A}",
        "contract end minus activation: the length of the contract in force",
    ),
    Derived(
        "attr_end_after_renewal_months",
        (_E, _R),
        f"{_E} - {_R}",
        "contract end minus last renewal: how far the renewed term runs",
    ),
    Derived(
        "attr_modif_after_activ_months",
        (_A, _M),
        f"{_M} - {_A}",
        "last product change minus activation",
    ),
    Derived(
        "attr_never_modified",
        (_A, _M),
        f"({_M} = {_A})::DOUBLE",
        "product unchanged since activation",
    ),
    Derived(
        "attr_end_within_3_months",
        (_E,),
        f"({_E} <= 3)::DOUBLE",
        "contract ends inside the label horizon",
    ),
    Derived(
        "attr_last_month_share",
        ("attr_cons_last_month", "attr_cons_12m"),
        _ratio("attr_cons_last_month", "attr_cons_12m"),
        "last month's electricity as a share of the year's (recent drop in use)",
    ),
    Derived(
        "attr_forecast_over_cons",
        ("attr_forecast_cons_12m", "attr_cons_12m"),
        _ratio("attr_forecast_cons_12m", "attr_cons_12m"),
        "next-12-month forecast against the last 12 months",
    ),
    Derived(
        "attr_forecast_year_over_12m",
        ("attr_forecast_cons_year", "attr_forecast_cons_12m"),
        _ratio("attr_forecast_cons_year", "attr_forecast_cons_12m"),
        "calendar-year forecast against the 12-month forecast",
    ),
    Derived(
        "attr_gas_share",
        ("attr_cons_gas_12m", "attr_cons_12m"),
        _ratio("attr_cons_gas_12m", "attr_cons_gas_12m + attr_cons_12m"),
        "gas share of the customer's energy (dual-fuel depth)",
    ),
    Derived(
        "attr_imp_over_forecast_year",
        ("attr_imp_cons", "attr_forecast_cons_year"),
        _ratio("attr_imp_cons", "attr_forecast_cons_year"),
        "paid consumption against the year's forecast",
    ),
    Derived(
        "attr_cons_per_kw",
        ("attr_cons_12m", "attr_pow_max"),
        _ratio("attr_cons_12m", "attr_pow_max"),
        "consumption per kW subscribed (load factor)",
    ),
    Derived(
        "attr_net_margin_per_kwh",
        ("attr_net_margin", "attr_cons_12m"),
        _ratio("attr_net_margin", "attr_cons_12m"),
        "margin per kWh: how expensive the customer's deal is",
    ),
    Derived(
        "attr_power_margin_per_kw",
        ("attr_margin_net_pow_ele", "attr_pow_max"),
        _ratio("attr_margin_net_pow_ele", "attr_pow_max"),
        "power-subscription margin per kW",
    ),
    Derived(
        "attr_gross_minus_net_power_margin",
        ("attr_margin_gross_pow_ele", "attr_margin_net_pow_ele"),
        "attr_margin_gross_pow_ele - attr_margin_net_pow_ele",
        "costs taken off the power margin",
    ),
    Derived(
        "attr_peak_minus_offpeak_price",
        ("attr_forecast_price_energy_peak", "attr_forecast_price_energy_off_peak"),
        "attr_forecast_price_energy_peak - attr_forecast_price_energy_off_peak",
        "peak premium of the tariff",
    ),
    Derived(
        "attr_has_peak_price",
        ("attr_forecast_price_energy_peak",),
        "(attr_forecast_price_energy_peak > 0)::DOUBLE",
        "two-period tariff",
    ),
    Derived(
        "attr_meter_rent_per_kw",
        ("attr_forecast_meter_rent_12m", "attr_pow_max"),
        _ratio("attr_forecast_meter_rent_12m", "attr_pow_max"),
        "meter rent per kW",
    ),
    Derived(
        "attr_forecast_bill",
        (
            "attr_forecast_cons_12m",
            "attr_forecast_price_energy_off_peak",
            "attr_forecast_meter_rent_12m",
            "attr_forecast_price_pow_off_peak",
            "attr_pow_max",
        ),
        "attr_forecast_cons_12m * attr_forecast_price_energy_off_peak"
        " + attr_forecast_meter_rent_12m + attr_forecast_price_pow_off_peak * attr_pow_max",
        "next year's bill at current prices (energy + rent + power)",
    ),
    Derived(
        "attr_net_margin_over_bill",
        (
            "attr_net_margin",
            "attr_forecast_cons_12m",
            "attr_forecast_price_energy_off_peak",
            "attr_forecast_meter_rent_12m",
        ),
        _ratio(
            "attr_net_margin",
            "attr_forecast_cons_12m * attr_forecast_price_energy_off_peak"
            " + attr_forecast_meter_rent_12m",
        ),
        "margin as a share of the energy bill",
    ),
)


def build_attributes(dataset_dir: Path, out_dir: Path | None = None) -> int:
    """Write ``features/attributes.parquet`` when the dataset has attributes; return its rows."""
    src = table_dir(dataset_dir, "customer_attributes")
    if not src.exists():
        return 0
    out_dir = out_dir or dataset_dir / "features"
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"create view attr as select * from read_parquet('{src}/**/*.parquet', union_by_name=true)"
    )
    kinds = con.execute(
        """select name,
                  count(value_num) > 0 as is_num,
                  count(value_str) filter (where try_cast(value_str as date) is null) = 0
                    and count(value_str) > 0 as is_date
           from attr group by name order by name"""
    ).fetchall()
    cols = []
    for name, is_num, is_date in kinds:
        safe = "attr_" + "".join(ch if ch.isalnum() else "_" for ch in name.lower())
        if is_num:
            cols.append(f"max(value_num) filter (where name = '{name}') as {safe}")
        elif is_date:
            cols.append(
                f"max(datediff('day', as_of::date, try_cast(value_str as date))) "
                f"filter (where name = '{name}') / {DAYS_PER_MONTH} as {safe}_months"
            )
        else:
            cols.append(f"max(value_str) filter (where name = '{name}') as {safe}")
    if not cols:
        return 0
    have = {c.rsplit(" as ", 1)[1] for c in cols}
    derived = [d for d in DERIVED if set(d.needs) <= have]
    extra = "".join(f", {d.sql} as {d.name}" for d in derived)
    tab: pa.Table = con.execute(
        f"""select *{extra} from (
              select customer_id, as_of as event_timestamp, as_of as created_timestamp,
                     {", ".join(cols)}
              from attr where as_of is not null group by customer_id, as_of)
            order by customer_id, event_timestamp"""
    ).arrow()
    tab = tab.read_all() if hasattr(tab, "read_all") else tab
    pq.write_table(tab, out_dir / "attributes.parquet")
    log.info(
        "attributes: %d rows × %d features (%d derived)",
        tab.num_rows,
        len(cols) + len(derived),
        len(derived),
    )
    return int(tab.num_rows)
