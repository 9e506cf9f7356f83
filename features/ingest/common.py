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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import table
from features.tables import ValidationResult, conform, table_dir, validate
from wattwise.errors import DataError

log = logging.getLogger(__name__)

ID_TABLES = ("meters", "customers")  # dimension tables: loaded even when the readings are not


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

    @property
    def empty(self) -> bool:
        """Nothing but ids was loaded: every table other than the meters and customers ones
        (which a file of rejected readings still fills) loaded 0 rows."""
        data = [tc.loaded for name, tc in self.tables.items() if name not in ID_TABLES]
        return not any(data) if data else not any(tc.loaded for tc in self.tables.values())

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
    """Content hash of a file (16 hex chars): the identity that makes re-imports idempotent.

    Streams 1 MiB blocks through blake2b (hashlib releases the GIL on large updates, so
    :func:`hash_in_background` overlaps it with parsing).
    """
    h = hashlib.blake2b(digest_size=8)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def hash_in_background(path: Path) -> Future[str]:
    """Start :func:`file_hash` on a thread; ``.result()`` gives the tag when it is needed.

    The full content hash stays the file's identity (no size/mtime shortcut that could make
    two different files replace each other's parts); it runs on the second core while the
    importer parses.
    """
    return _HASH_POOL.submit(file_hash, path)


_HASH_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-hash")


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
    """Write validated rows as ``src-<tag>`` parts (one per month for partitioned tables).

    Rows of a month are gathered with zero-copy slices when they form few runs (series
    sorted by meter and time), else with one ``take``.
    """
    tdef = table(name)
    if data.num_rows == 0:
        return
    if tdef.partition_by != "month":
        _write_part(dataset_dir, name, data, tag, None)
        return
    ts = data.column("ts")
    lo, hi = (np.datetime64(v.value, "us").astype("datetime64[M]") for v in pc.min_max(ts).values())
    if lo == hi:  # one month: no per-row work
        _write_part(dataset_dir, name, data, tag, str(lo))
        return
    us = pc.cast(ts, pa.int64()).to_numpy()
    months = us.astype("datetime64[us]").astype("datetime64[M]").view(np.int64)
    runs = np.flatnonzero(np.r_[True, months[1:] != months[:-1], True])
    if runs.size - 1 <= 100_000:  # slicing costs per run, not per row
        by_month: dict[int, list[pa.Table]] = {}
        for a, b in zip(runs[:-1], runs[1:], strict=True):
            by_month.setdefault(int(months[a]), []).append(data.slice(a, b - a))
        for m in sorted(by_month):
            sub = pa.concat_tables(by_month[m])
            _write_part(dataset_dir, name, sub, tag, str(np.datetime64(m, "M")))
        return
    order = np.argsort(months, kind="stable")
    sorted_m = months[order]
    cuts = np.flatnonzero(np.r_[True, sorted_m[1:] != sorted_m[:-1], True])
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        sub = data.take(pa.array(order[a:b]))
        _write_part(dataset_dir, name, sub, tag, str(np.datetime64(int(sorted_m[a]), "M")))


def _write_part(
    dataset_dir: Path, name: str, data: pa.Table, tag: str, partition_value: str | None
) -> Path:
    """One ``src-<tag>`` parquet part, laid out as :func:`features.tables.write_parts` does.

    Written with the options of the synthetic generator's big tables (dictionary-encoded ids,
    delta-encoded timestamps, snappy): about 25% less CPU than the zstd default for files
    about twice as large.
    """

    tdef = table(name)
    d = table_dir(dataset_dir, name)
    if tdef.partition_by:
        d = d / f"{tdef.partition_by}={partition_value}"
    d.mkdir(parents=True, exist_ok=True)
    return _write_parquet(data, d / f"src-{tag}.parquet", "ts")


def write_side_table(dataset_dir: Path, name: str, data: pa.Table, tag: str) -> Path:
    """Write a non-canonical side table (e.g. ``greenbutton_raw``) under the same part naming."""

    d = dataset_dir / name
    d.mkdir(parents=True, exist_ok=True)
    _remove_parts(d, tag)
    return _write_parquet(data, d / f"src-{tag}.parquet", "start")


def _write_parquet(data: pa.Table, path: Path, time_col: str) -> Path:
    """One part with the big-table options: dictionary strings, delta times, snappy."""
    import pyarrow.parquet as pq

    strings = [f.name for f in data.schema if pa.types.is_string(f.type)]
    pq.write_table(
        data,
        path,
        compression="snappy",
        use_dictionary=strings or False,
        column_encoding={time_col: "DELTA_BINARY_PACKED"}
        if time_col in data.column_names
        else None,
    )
    return path


class SideTableWriter:
    """Stream a side table into its ``src-<tag>`` part batch by batch (bounded memory).

    Batches go to a hidden temporary file; :meth:`commit` replaces the file's old parts with
    it, and leaving the ``with`` block without a commit (an error) deletes it, so a failed
    import leaves nothing behind. Dictionary-encoded string columns are written as they are
    and read back as plain strings (no Arrow schema is stored).
    """

    def __init__(self, dataset_dir: Path, name: str, tag: str) -> None:
        self.dir = dataset_dir / name
        self.tag = tag
        self.tmp = self.dir / f".src-{tag}.parquet.tmp"
        self.writer = None
        self.created_dir = False

    def __enter__(self) -> SideTableWriter:
        return self

    def write(self, data: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.created_dir = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(
                self.tmp,
                data.schema,
                compression="snappy",
                use_dictionary=[f.name for f in data.schema if _is_text(f.type)] or False,
                column_encoding={"start": "DELTA_BINARY_PACKED"}
                if "start" in data.column_names
                else None,
                store_schema=False,
            )
        assert self.writer is not None
        self.writer.write_table(data)

    def commit(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        _remove_parts(self.dir, self.tag)
        self.tmp.rename(self.dir / f"src-{self.tag}.parquet")

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            self.tmp.unlink(missing_ok=True)
            if self.created_dir and not any(self.dir.iterdir()):
                self.dir.rmdir()


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))
