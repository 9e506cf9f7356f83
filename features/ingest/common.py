"""Shared machinery of every importer: validate, quarantine, write idempotently, count.

Every source file's rows go to parts named after the file's content hash
(``src-<hash>[...].parquet``), so importing the same file twice replaces its parts instead of
duplicating them. Rejected rows go to ``quarantine/<table>/src-<hash>.parquet`` with the reason,
equally replaced on re-import. Nothing is dropped silently: :class:`ImportReport` carries
read / loaded / quarantined-by-reason counts per table, which the CLI prints.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import table
from features.tables import ValidationResult, conform, table_dir, validate, write_parts
from wattwise.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class TableCounts:
    """Counts for one table of one import."""

    read: int = 0
    loaded: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    """What an import did, per table; the CLI renders it as a small table."""

    kind: str
    dataset_dir: Path
    files: list[str] = field(default_factory=list)
    tables: dict[str, TableCounts] = field(default_factory=dict)

    def add(self, name: str, res: ValidationResult, notes: Counter[str] | None = None) -> None:
        tc = self.tables.setdefault(name, TableCounts())
        tc.read += res.n_read
        tc.loaded += res.good.num_rows
        tc.quarantined.update(res.reasons)
        if notes:
            tc.notes.update(notes)

    def rows(self) -> list[tuple[str, int, int, int, str]]:
        """(table, read, loaded, quarantined, reasons) rows for display."""
        out = []
        for name, tc in self.tables.items():
            reasons = ", ".join(f"{r}: {n}" for r, n in tc.quarantined.most_common())
            notes = ", ".join(f"{r}: {n}" for r, n in tc.notes.most_common())
            text = "; ".join(x for x in (reasons, notes and f"notes: {notes}") if x)
            out.append((name, tc.read, tc.loaded, sum(tc.quarantined.values()), text))
        return out


def file_hash(path: Path) -> str:
    """Content hash of a file (16 hex chars): the identity that makes re-imports idempotent."""
    h = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_not_empty(path: Path) -> None:
    """Raise a clear error for a missing or empty file (before any parser sees it)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def _remove_parts(d: Path, tag: str) -> None:
    if d.exists():
        for old in d.rglob(f"src-{tag}*.parquet"):
            old.unlink()


def _cross_file_duplicates(d: Path, tag: str, key: tuple[str, ...], data: pa.Table) -> pa.Array:
    """Mask of rows whose key already exists in parts written from *other* source files."""
    others = (
        [p for p in d.rglob("*.parquet") if not p.name.startswith(f"src-{tag}")]
        if d.exists()
        else []
    )
    if not others or not key or data.num_rows == 0:
        return pa.array(np.zeros(data.num_rows, dtype=bool))
    import duckdb

    con = duckdb.connect()
    try:
        con.register(
            "new",
            data.select(list(key)).append_column("__rowid", pa.array(np.arange(data.num_rows))),
        )
        files = ", ".join(f"'{p}'" for p in others)
        on = " AND ".join(f'n."{k}" = o."{k}"' for k in key)
        cols = ", ".join(f'"{k}"' for k in key)
        hit = con.execute(
            f"SELECT n.__rowid FROM new n SEMI JOIN "
            f"(SELECT DISTINCT {cols} FROM read_parquet([{files}], hive_partitioning=false)) o "
            f"ON {on}"
        ).fetchnumpy()["__rowid"]
    finally:
        con.close()

    mask = np.zeros(data.num_rows, dtype=bool)
    mask[hit] = True
    return pa.array(mask)


def load_table(
    dataset_dir: Path,
    name: str,
    data: pa.Table,
    *,
    source: str,
    tag: str,
    report: ImportReport,
    result: ValidationResult | None = None,
    notes: Counter[str] | None = None,
) -> ValidationResult:
    """Validate ``data`` for canonical table ``name`` and write it under parts ``src-<tag>``.

    ``result`` lets a caller pass an already computed validation (interval reads go through
    :func:`features.quality.check_interval_reads`). Rows whose key was loaded before from a
    different file are quarantined rather than silently duplicated.
    """
    tdef = table(name)
    if result is None:
        result = validate(tdef, conform(tdef, data))
    d = table_dir(dataset_dir, name)
    _remove_parts(d, tag)
    _remove_parts(dataset_dir / "quarantine" / name, tag)
    good, rejected = result.good, result.rejected
    dup = _cross_file_duplicates(d, tag, tdef.key, good)
    if pc.any(dup).as_py():
        clash = good.filter(dup).append_column(
            "reason", pa.array(["key already loaded from another file"] * pc.sum(dup).as_py())
        )
        good = good.filter(pc.invert(dup))
        rejected = (
            pa.concat_tables([rejected, clash.cast(rejected.schema)])
            if rejected.num_rows
            else clash
        )
        result = ValidationResult(
            name,
            good,
            rejected,
            result.reasons + Counter({"key already loaded from another file": clash.num_rows}),
        )
    write_good(dataset_dir, name, good, tag)
    if rejected.num_rows:
        from features.tables import write_quarantine

        write_quarantine(dataset_dir, name, rejected, source, part=f"src-{tag}")
    report.add(name, result, notes)
    log.debug(
        "%s: %d rows loaded, %d quarantined from %s", name, good.num_rows, rejected.num_rows, source
    )
    return result


def write_good(dataset_dir: Path, name: str, data: pa.Table, tag: str) -> None:
    """Write validated rows as ``src-<tag>`` parts (one per month for partitioned tables)."""
    tdef = table(name)
    if data.num_rows == 0:
        return
    if tdef.partition_by == "month":
        us = pc.cast(data.column("ts"), pa.int64()).to_numpy()
        months = us.astype("datetime64[us]").astype("datetime64[M]")
        order = np.argsort(months, kind="stable")
        sorted_m = months[order]
        cuts = np.flatnonzero(np.r_[True, sorted_m[1:] != sorted_m[:-1], True])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            sub = data.take(pa.array(order[a:b]))
            write_parts(dataset_dir, name, sub, part=f"src-{tag}", partition_value=str(sorted_m[a]))
    else:
        write_parts(dataset_dir, name, data, part=f"src-{tag}")


def write_side_table(dataset_dir: Path, name: str, data: pa.Table, tag: str) -> Path:
    """Write a non-canonical side table (e.g. ``greenbutton_raw``) under the same part naming."""
    import pyarrow.parquet as pq

    d = dataset_dir / name
    d.mkdir(parents=True, exist_ok=True)
    _remove_parts(d, tag)
    path = d / f"src-{tag}.parquet"
    pq.write_table(data, path, compression="zstd")
    return path
