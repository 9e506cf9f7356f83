"""The ``attributes`` feature group: a source's own customer attributes, made model-ready.

Sources such as an energy retailer's churn table carry attributes with no canonical home;
importers store them long-form in ``customer_attributes`` (name, value, as_of). This group
pivots them to one row per customer and ``as_of`` time, with date-valued attributes turned
into months relative to that time (``<name>_months``: negative = in the past), so that every
value is one that was known when the row's time came.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from features.tables import table_dir

log = logging.getLogger(__name__)
DAYS_PER_MONTH = 30.4375


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
    tab: pa.Table = con.execute(
        f"""select customer_id, as_of as event_timestamp, as_of as created_timestamp, {", ".join(cols)}
            from attr where as_of is not null group by customer_id, as_of
            order by customer_id, as_of"""
    ).arrow()
    tab = tab.read_all() if hasattr(tab, "read_all") else tab
    pq.write_table(tab, out_dir / "attributes.parquet")
    log.info("attributes: %d rows × %d features", tab.num_rows, len(cols))
    return int(tab.num_rows)
