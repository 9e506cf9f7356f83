"""PowerCo (BCG case) SME churn table: customers, churn_labels and long-form attributes.

The table has no interval data. ``MISSING`` means null. The label is "churned within 3 months"
and the latest dates in the table (date_modif_prod, date_renewal) are 2016-01-29, so the
snapshot is 2016-01-31: every attribute is known by then and the label covers Feb-Apr 2016.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.common import (
    ImportReport,
    TableCounts,
    check_not_empty,
    file_hash,
    load_table,
)
from wattwise.errors import DataError

SNAPSHOT = datetime(2016, 1, 31, tzinfo=UTC)
HORIZON_DAYS = 90
# `churn` is optional: a new file to score has no label yet.
REQUIRED = ("id", "date_activ")


def import_powerco(
    paths: list[Path], dataset_dir: Path, *, report: ImportReport | None = None
) -> ImportReport:
    """Import ``client_data.csv``; a price table given too is counted and skipped with a note."""
    import pyarrow.csv as pcsv

    report = report or ImportReport("powerco", dataset_dir)
    for path in paths:
        if path.is_dir():
            path = path / "client_data.csv"
        check_not_empty(path)
        try:
            t = pcsv.read_csv(
                path,
                convert_options=pcsv.ConvertOptions(
                    null_values=["MISSING", ""], strings_can_be_null=True
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read as CSV: {str(exc).splitlines()[0]}") from exc
        if "price_date" in t.column_names and "date_activ" not in t.column_names:
            # The shared price file holds the 2015 monthly prices of only ~6 % of the customers
            # (its first 11,025 rows); features from it gave no cross-validated gain (see
            # docs/importing.md), so it is counted and skipped, not loaded.
            counts = report.tables.setdefault("price_data", TableCounts())
            counts.read += t.num_rows
            counts.notes["price table not used by the PowerCo features"] += 1
            report.files.append(str(path))
            continue
        missing = [c for c in REQUIRED if c not in t.column_names]
        if missing:
            raise DataError(f"{path}: not a PowerCo client table (missing columns {missing})")
        tag = file_hash(path)
        ids = t.column("id").cast(pa.string())
        n = t.num_rows
        activ = (
            pc.cast(t.column("date_activ"), pa.date32())
            if not pa.types.is_date(t.column("date_activ").type)
            else t.column("date_activ")
        )
        customers = pa.table(
            {
                "customer_id": ids,
                "tenure_start": activ,
                "move_in": activ,
                "source": pa.array(["powerco"] * n),
                "segment": t.column("channel_sales").cast(pa.string())
                if "channel_sales" in t.column_names
                else pa.nulls(n, pa.string()),
            }
        )
        load_table(dataset_dir, "customers", customers, source=str(path), tag=tag, report=report)
        if "churn" in t.column_names:  # a new file to score has no label yet
            churn = t.column("churn")
            labels = pa.table(
                {
                    "customer_id": ids,
                    "snapshot": pa.array([SNAPSHOT] * n, pa.timestamp("us", tz="UTC")),
                    "churned": pc.equal(churn.cast(pa.int64()), 1)
                    if not pa.types.is_boolean(churn.type)
                    else churn,
                    "horizon_days": pa.array([HORIZON_DAYS] * n, pa.int16()),
                }
            )
            load_table(
                dataset_dir, "churn_labels", labels, source=str(path), tag=tag, report=report
            )
        attrs = _long(t, ids)
        load_table(
            dataset_dir, "customer_attributes", attrs, source=str(path), tag=tag, report=report
        )
        report.files.append(str(path))
    return report


def _long(t: pa.Table, ids: pa.ChunkedArray) -> pa.Table:
    """Every column but id and churn as (name, value_num | value_str) rows, as of the snapshot."""
    parts = []
    for name in t.column_names:
        if name in ("id", "churn"):
            continue
        col = t.column(name)
        n = t.num_rows
        if (
            pa.types.is_integer(col.type)
            or pa.types.is_floating(col.type)
            or pa.types.is_boolean(col.type)
        ):
            num, txt = col.cast(pa.float64()), pa.nulls(n, pa.string())
        elif name == "has_gas":
            num, txt = (
                pc.equal(col.cast(pa.string()), "t").cast(pa.float64()),
                pa.nulls(n, pa.string()),
            )
        else:
            num, txt = pa.nulls(n, pa.float64()), col.cast(pa.string())
        parts.append(
            pa.table(
                {
                    "customer_id": ids,
                    "name": pa.array([name] * n),
                    "value_num": num,
                    "value_str": txt,
                    "as_of": pa.array([SNAPSHOT] * n, pa.timestamp("us", tz="UTC")),
                }
            )
        )
    return pa.concat_tables(parts)
