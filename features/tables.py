"""Reading, writing and validating canonical tables as parquet datasets.

Validation is one vectorized DuckDB query per table: every row gets the first reason it
fails (null in a required column, out of range, not an allowed value, duplicate key), good
rows are written, rejected rows go to ``quarantine/<table>/`` with their reason. Nothing is
dropped silently: callers get the counts.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from features.schema import Table, table
from wattwise.errors import DataError

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"


@dataclass
class ValidationResult:
    """Rows that passed, rows that did not (with a ``reason`` column), and counts by reason."""

    table: str
    good: pa.Table
    rejected: pa.Table
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def n_read(self) -> int:
        return self.good.num_rows + self.rejected.num_rows


def conform(tdef: Table, data: pa.Table) -> pa.Table:
    """Select and cast ``data`` to the table's schema; missing nullable columns become null.

    Raises :class:`DataError` naming the column when a required column is missing or a cast
    is impossible.
    """
    arrays = []
    for col in tdef.columns:
        if col.name in data.column_names:
            arr = data.column(col.name)
            if arr.type != col.type:
                try:
                    arr = arr.cast(col.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DataError(
                        f"{tdef.name}.{col.name}: cannot convert {arr.type} to {col.type}: {exc}"
                    ) from exc
            arrays.append(arr)
        elif col.nullable:
            arrays.append(pa.nulls(data.num_rows, type=col.type))
        else:
            raise DataError(f"{tdef.name}: required column {col.name!r} is missing")
    return pa.Table.from_arrays(arrays, schema=tdef.schema)


def _checks_sql(tdef: Table) -> str:
    """A CASE expression giving the first failed check of a row, or NULL."""
    whens: list[str] = []
    for c in tdef.columns:
        q = f'"{c.name}"'
        if not c.nullable:
            whens.append(f"WHEN {q} IS NULL THEN 'missing {c.name}'")
        if pa.types.is_floating(c.type):
            whens.append(f"WHEN isnan({q}) OR isinf({q}) THEN 'non-finite {c.name}'")
        if c.min is not None:
            whens.append(f"WHEN {q} < {c.min} THEN '{c.name} below {c.min}'")
        if c.max is not None:
            whens.append(f"WHEN {q} > {c.max} THEN '{c.name} above {c.max}'")
        if c.allowed:
            vals = ", ".join(f"'{v}'" for v in c.allowed)
            whens.append(f"WHEN {q} IS NOT NULL AND {q} NOT IN ({vals}) THEN 'unknown {c.name}'")
    if tdef.key:
        keys = ", ".join(f'"{k}"' for k in tdef.key)
        whens.append(
            f"WHEN row_number() OVER (PARTITION BY {keys} ORDER BY __rowid) > 1 "
            f"THEN 'duplicate {'/'.join(tdef.key)}'"
        )
    if not whens:
        return "NULL"
    return "CASE " + " ".join(whens) + " END"


def validate(tdef: Table, data: pa.Table) -> ValidationResult:
    """Split ``data`` (already conformed) into good and rejected rows, keeping input order.

    Duplicates keep the first occurrence and quarantine the rest.
    """
    if data.num_rows == 0:
        return ValidationResult(
            tdef.name, data, data.append_column("reason", pa.array([], pa.string()))
        )
    con = duckdb.connect()
    try:
        con.register("src", data.append_column("__rowid", pa.array(np.arange(data.num_rows))))
        cols = ", ".join(f'"{c}"' for c in tdef.column_names)
        res = con.execute(
            f"SELECT {cols}, {_checks_sql(tdef)} AS reason FROM src ORDER BY __rowid"
        ).arrow()
    finally:
        con.close()
    res = res.read_all() if hasattr(res, "read_all") else res
    bad_mask = pc.is_valid(res.column("reason"))
    good = res.filter(pc.invert(bad_mask)).drop_columns(["reason"])
    rejected = res.filter(bad_mask)
    reasons = Counter(rejected.column("reason").to_pylist()) if rejected.num_rows else Counter()
    return ValidationResult(tdef.name, conform(tdef, good), rejected, reasons)


def table_dir(dataset_dir: Path, name: str) -> Path:
    """Folder of a table inside a dataset (``truth/`` for truth tables)."""
    return dataset_dir / table(name).relpath()


def write_parts(
    dataset_dir: Path,
    name: str,
    data: pa.Table,
    *,
    part: str = "part-0",
    partition_value: str | None = None,
    compression: str = "zstd",
) -> Path:
    """Write one parquet file of a table (``partition_value`` for partitioned tables)."""
    tdef = table(name)
    d = table_dir(dataset_dir, name)
    if tdef.partition_by:
        if partition_value is None:
            raise ValueError(f"{name} is partitioned by {tdef.partition_by}: give partition_value")
        d = d / f"{tdef.partition_by}={partition_value}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{part}.parquet"
    pq.write_table(data, path, compression=compression)
    return path


def write_table(dataset_dir: Path, name: str, data: pa.Table, *, overwrite: bool = True) -> None:
    """Write a whole table (conformed to its schema); partitioned tables split by month."""
    tdef = table(name)
    data = conform(tdef, data)
    d = table_dir(dataset_dir, name)
    if overwrite and d.exists():
        shutil.rmtree(d)
    if tdef.partition_by == "month":
        months = pc.strftime(data.column("ts"), format="%Y-%m")
        for m in pc.unique(months).to_pylist():
            sub = data.filter(pc.equal(months, m))
            write_parts(
                dataset_dir, name, sub, part=f"part-{uuid.uuid4().hex[:8]}", partition_value=m
            )
    else:
        write_parts(dataset_dir, name, data)


def read_table(
    dataset_dir: Path,
    name: str,
    columns: list[str] | None = None,
    filter: pc.Expression | None = None,
) -> pa.Table:
    """Read a table as arrow, cast to its canonical schema (dictionary ids become strings)."""
    tdef = table(name)
    d = table_dir(dataset_dir, name)
    if not d.exists():
        raise DataError(
            f"table {name!r} not found under {dataset_dir} (generate or import data first)"
        )
    ds = pads.dataset(d, format="parquet", partitioning="hive")
    got = ds.to_table(columns=columns or tdef.column_names, filter=filter)
    if columns:
        return got
    return conform(tdef, got)


def write_quarantine(
    dataset_dir: Path, name: str, rejected: pa.Table, source: str, *, part: str | None = None
) -> Path | None:
    """Append rejected rows (with reason and source) to ``quarantine/<table>/``.

    ``part`` names the file (importers pass one derived from the source file's content hash,
    so that re-importing a file replaces its quarantine entries instead of duplicating them).
    """
    if rejected.num_rows == 0:
        return None
    d = dataset_dir / QUARANTINE / name
    d.mkdir(parents=True, exist_ok=True)
    out = rejected.append_column("source", pa.array([source] * rejected.num_rows, pa.string()))
    path = d / f"{part or uuid.uuid4().hex[:12]}.parquet"
    pq.write_table(out, path)
    log.info("quarantined %d %s rows from %s -> %s", rejected.num_rows, name, source, path)
    return path
